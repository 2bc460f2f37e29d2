"""Runs many `backend.ai ...` invocations of the real 20.09 CLI in one Python 3.8 process.

Started by tests/oracle.py with the oracle venv's interpreter. Each request (a JSON line on
stdin: argv and working directory) runs the CLI's own click entry point exactly as the
`backend.ai` console script does, with file descriptors 1 and 2 redirected to temporary files,
so what the CLI prints and logs is captured as a subprocess run would capture it. The answer
(exit code, stdout, stderr) goes back as one JSON line on the file descriptor given as argv[1].
Only the interpreter start-up is saved (about 1 s per call); the code path is the CLI's.
"""
import json
import os
import sys
import tempfile
import traceback

from ai.backend.cli.__main__ import main

resp = os.fdopen(int(sys.argv[1]), "w", buffering=1)
for line in sys.stdin:
    req = json.loads(line)
    os.chdir(req["cwd"])
    sys.stdout.flush()
    sys.stderr.flush()
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    save1, save2 = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    rc = 0
    try:
        try:
            main.main(args=req["argv"], prog_name="backend.ai", standalone_mode=True)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - reported as the CLI's own crash would be
            traceback.print_exc()
            rc = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(save1, 1)
        os.dup2(save2, 2)
        os.close(save1)
        os.close(save2)
    out.seek(0)
    err.seek(0)
    resp.write(json.dumps({"rc": rc, "stdout": out.read().decode("utf-8", "surrogateescape"),
                           "stderr": err.read().decode("utf-8", "surrogateescape")}) + "\n")
    out.close()
    err.close()
