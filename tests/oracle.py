"""The reference oracle: the real Backend.AI 20.09 manager CLI, run the way an operator runs it.

Conformance tests write with `backend.ai mgr etcd ...` into one namespace and with our code into
another namespace of the same etcd, then compare the raw bytes under `/sorna/<ns>/`
(docs/backendai-etcd.md#namespace-and-keys). Several rules shape this module:

- The CLI exits 0 on almost every failure. It logs "An error occurred." and a traceback instead
  (src/ai/backend/manager/cli/etcd.py in backend.ai-manager 20.09.29;
  docs/backendai-etcd.md#the-cli). So every helper scans the output and raises `OracleError`,
  and callers still assert on etcd contents. `rescan-images` can even fail with no output at
  all (a race measured here; docs/backendai-etcd.md#rescan).
- A missing oracle is a test failure, never a skip. `make oracle` builds it.
- python-etcd3 0.12 cannot authenticate over plaintext gRPC with grpcio >= 1.45
  (kragniz/python-etcd3#1876). The oracle venv must therefore hold grpcio < 1.45, as every
  2020-2021 install of the 20.09 manager did. `Oracle.create` checks this up front so the
  failure names its cause.
- The raw reader uses `etcdctl`, not our own `EtcdStore`, so a bug in our reader cannot hide a
  bug in our writer. Credentials go to etcdctl through `ETCDCTL_USER`, never through argv.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from backends.secrets import Redactor, Secret

ORACLE_ENV = "BAIRM_ORACLE"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ORACLE = REPO_ROOT / ".venv-oracle" / "bin" / "backend.ai"
HOST = "127.0.0.1"

# What the CLI prints when it has swallowed an exception (cli/etcd.py @20.09: log.exception), or
# when click/trafaret raised before the handler ran.
FAILURE_MARKERS = (
    "An error occurred",
    "Traceback (most recent call last)",
    "Validation of shared etcd configuration has failed",
    "Validation of manager configuration has failed",
)
# The [db] section must validate (a blank password is refused) but is never connected to.
UNUSED_DB_PASSWORD = "unused-by-etcd-commands"
# grpcio from this version on refuses the call credentials python-etcd3 0.12 attaches.
GRPC_AUTH_BROKEN_FROM = (1, 45)

# Variables that would make the CLI read another config file or override ours
# (ai.backend.manager.config.load @20.09; backends/config.py ENV_OVERRIDES).
_SCRUBBED_ENV_PREFIXES = ("BACKEND_",)

CALL_SECONDS: list[float] = []
"""Wall time of every oracle CLI call in this process, for timing reports."""


class OracleMissing(RuntimeError):
    """The reference CLI is not installed. Tests fail, never skip, on this."""


class OracleError(RuntimeError):
    """The reference CLI reported a failure, whatever its exit code said."""

    def __init__(self, message: str, result: subprocess.CompletedProcess[str] | None = None) -> None:
        super().__init__(message)
        self.result = result


# -- locating the executable --------------------------------------------------------------

def find_oracle(env: Mapping[str, str] | None = None) -> Path:
    """`$BAIRM_ORACLE`, else `.venv-oracle/bin/backend.ai` in the repository."""
    env = os.environ if env is None else env
    explicit = env.get(ORACLE_ENV)
    path = Path(explicit) if explicit else DEFAULT_ORACLE
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"{ORACLE_ENV}={explicit}" if explicit else str(path)
        raise OracleMissing(
            f"the Backend.AI 20.09 reference CLI is missing ({where} is not an executable file); "
            f"run `make oracle` in {REPO_ROOT} (scripts/oracle-venv.sh), or point {ORACLE_ENV} "
            "at the `backend.ai` executable of a venv with backend.ai-manager==20.9.29")
    return path


@functools.lru_cache(maxsize=8)
def oracle_grpc_version(exe: Path) -> tuple[int, ...]:
    """grpcio version inside the oracle's venv (its `python` sits next to `backend.ai`)."""
    py = exe.parent / "python"
    r = subprocess.run([str(py), "-c", "import grpc; print(grpc.__version__)"], capture_output=True,
                       text=True, timeout=60, env=_oracle_env())
    if r.returncode != 0:
        raise OracleError(f"cannot import grpc in the oracle venv ({py}): {r.stderr.strip()[-400:]}")
    return tuple(int(p) for p in r.stdout.strip().split(".")[:3] if p.isdigit())


def check_oracle_can_authenticate(exe: Path) -> None:
    """Raises if the oracle's grpcio would turn every authenticated etcd call into "An error occurred"."""
    version = oracle_grpc_version(exe)
    if version >= GRPC_AUTH_BROKEN_FROM:
        shown = ".".join(map(str, version))
        raise OracleError(
            f"the oracle venv has grpcio {shown}, which refuses the etcd auth token that python-etcd3 "
            "0.12 sends over plaintext (UNAUTHENTICATED: 'Established channel does not have a sufficient "
            "security level to transfer call credential'; python-etcd3 issue #1876). Install it with "
            "`pip install backend.ai-manager==20.9.29 'grpcio<1.45'` (scripts/oracle-venv.sh), e.g. "
            f"`rm -rf {exe.parent.parent} && make oracle`")


def _oracle_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV_PREFIXES)}
    env.update({
        # python-etcd3's generated code needs the pure-python protobuf runtime (kragniz/python-etcd3#1957)
        "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python",
        # argv, files and stdout as UTF-8 whatever the locale, so unicode keys round-trip
        "PYTHONUTF8": "1",
        "PYTHONIOENCODING": "utf-8",
    })
    return env


# -- the CLI ------------------------------------------------------------------------------

INPROCESS_ENV = "BAIRM_ORACLE_INPROCESS"


class _Driver:
    """One long-lived 20.09 interpreter running CLI invocations (tests/oracle_driver.py).

    Tests set BAIRM_ORACLE_INPROCESS=1 (tests/conftest.py): about 0.15 s per call instead of
    1.2 s. Benchmarks leave it unset, since they compare whole processes.
    """

    _drivers: dict[str, _Driver] = {}

    def __init__(self, exe: Path) -> None:
        python = exe.parent / "python"
        r, w = os.pipe()
        self.proc = subprocess.Popen([str(python), str(Path(__file__).with_name("oracle_driver.py")), str(w)],
                                     stdin=subprocess.PIPE, pass_fds=(w,), text=True, encoding="utf-8",
                                     env={**_oracle_env(), "PYTHONWARNINGS": "ignore"},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        self.answers = os.fdopen(r, encoding="utf-8")

    @classmethod
    def get(cls, exe: Path) -> _Driver:
        d = cls._drivers.get(str(exe))
        if d is None or d.proc.poll() is not None:
            d = cls._drivers[str(exe)] = cls(exe)
        return d

    def run(self, argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n")
        self.proc.stdin.flush()
        line = self.answers.readline()
        if not line:
            self.proc.kill()
            raise OracleError("the 20.09 CLI driver process died; see tests/oracle_driver.py")
        ans = json.loads(line)
        return int(ans["rc"]), ans["stdout"], ans["stderr"]


def manager_toml(*, etcd_port: int, namespace: str, etcd_user: str | None, etcd_password: str | None,
                 etcd_host: str = HOST, db_port: int = 5432, db_name: str = "backend",
                 db_user: str = "postgres", db_password: str | None = None) -> str:
    """The minimal manager.toml the 20.09 CLI accepts (docs/sandbox.md#the-oracle).

    The [db] section is required by the schema, but `etcd` subcommands never connect to it.
    """
    doc = {
        "etcd": {"namespace": namespace, "addr": {"host": etcd_host, "port": etcd_port},
                 "user": etcd_user or "", "password": etcd_password or ""},
        "db": {"type": "postgresql", "addr": {"host": HOST, "port": db_port}, "name": db_name,
               "user": db_user, "password": db_password or UNUSED_DB_PASSWORD},
        "manager": {"num-proc": 1},
        "docker-registry": {"ssl-verify": False},
        "logging": {"level": "INFO", "drivers": ["console"],
                    "pkg-ns": {"": "WARNING", "ai.backend": "INFO"},
                    "console": {"colored": False, "format": "simple"}},
        "debug": {"enabled": False},
    }
    return tomli_w.dumps(doc)


class Oracle:
    """`backend.ai mgr ...` of 20.09 bound to one etcd namespace, run from a private directory."""

    def __init__(self, exe: Path, workdir: Path, namespace: str, secrets: Sequence[str] = ()) -> None:
        self.exe = exe
        self.workdir = workdir
        self.namespace = namespace
        self._redactor = Redactor([s for s in secrets if s])

    @classmethod
    def create(cls, *, etcd_port: int, namespace: str, etcd_user: str | None = None,
               etcd_password: str | Secret | None = None, etcd_host: str = HOST, db_port: int = 5432,
               db_name: str = "backend", db_user: str = "postgres",
               db_password: str | Secret | None = None, exe: Path | None = None) -> Oracle:
        """Writes manager.toml (0600) into a fresh 0700 temp dir; `close()` removes it."""
        exe = exe or find_oracle()
        etcd_pw = etcd_password.reveal() if isinstance(etcd_password, Secret) else etcd_password
        db_pw = db_password.reveal() if isinstance(db_password, Secret) else db_password
        if etcd_user:
            check_oracle_can_authenticate(exe)
        workdir = Path(tempfile.mkdtemp(prefix="bairm-oracle-"))  # mkdtemp: mode 0700
        path = workdir / "manager.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(manager_toml(etcd_port=etcd_port, namespace=namespace, etcd_user=etcd_user,
                                 etcd_password=etcd_pw, etcd_host=etcd_host, db_port=db_port,
                                 db_name=db_name, db_user=db_user, db_password=db_pw))
        return cls(exe, workdir, namespace, [s for s in (etcd_pw, db_pw) if s])

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ------------------------------------------------------------------------

    def mgr(self, *args: str, check: bool = True, ok_codes: Sequence[int] = (0,),
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Runs `backend.ai mgr ARGS` in the workdir. With `check`, raises on any sign of failure."""
        argv = [str(self.exe), "mgr", *args]
        t0 = time.monotonic()
        if os.environ.get(INPROCESS_ENV) == "1":
            rc, out, err = _Driver.get(self.exe).run(["mgr", *args], self.workdir, timeout)
            r = subprocess.CompletedProcess(argv, rc, out, err)
        else:
            r = subprocess.run(argv, cwd=self.workdir, capture_output=True, encoding="utf-8",
                               errors="surrogateescape", timeout=timeout, env=_oracle_env())
        CALL_SECONDS.append(time.monotonic() - t0)
        if check:
            self._raise_on_failure(r, ok_codes)
        return r

    def etcd(self, *args: str, check: bool = True, ok_codes: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
        return self.mgr("etcd", *args, check=check, ok_codes=ok_codes)

    def _raise_on_failure(self, r: subprocess.CompletedProcess[str], ok_codes: Sequence[int]) -> None:
        output = f"{r.stdout}\n{r.stderr}"
        marker = next((m for m in FAILURE_MARKERS if m in output), None)
        if marker is None and r.returncode in ok_codes:
            return
        why = f"printed {marker!r}" if marker else f"exited {r.returncode}"
        shown = " ".join(repr(a) if (not a or " " in a) else a for a in r.args[1:])
        tail = self._redactor("\n".join(output.strip().splitlines()[-25:]))
        raise OracleError(f"oracle `backend.ai {shown[:300]}` {why} (exit code {r.returncode}):\n{tail}", r)

    # -- etcd subcommands ---------------------------------------------------------------

    def put_json(self, key: str, doc: Mapping[str, Any] | str | bytes) -> subprocess.CompletedProcess[str]:
        """`etcd put-json KEY FILE`. A str or bytes `doc` is written byte for byte (raw JSON text)."""
        if isinstance(doc, bytes):
            data = doc
        elif isinstance(doc, str):
            data = doc.encode("utf-8", "surrogatepass")
        else:
            data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        fd, name = tempfile.mkstemp(prefix="doc-", suffix=".json", dir=self.workdir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return self.etcd("put-json", "--", key, name)
        finally:
            os.unlink(name)

    def put(self, key: str, value: str) -> subprocess.CompletedProcess[str]:
        return self.etcd("put", "--", key, value)

    def get(self, key: str) -> str | None:
        """`etcd get KEY`: the value (print() appends one newline), or None when it exits 1."""
        r = self.etcd("get", "--", key, ok_codes=(0, 1))
        if r.returncode == 1:
            if r.stdout:
                raise OracleError(f"oracle `etcd get` exited 1 but printed {r.stdout[:200]!r}", r)
            return None
        if not r.stdout.endswith("\n"):
            raise OracleError(f"oracle `etcd get` printed no trailing newline: {r.stdout[-200:]!r}", r)
        return r.stdout[:-1]

    def get_prefix_text(self, key: str) -> str:
        """Exactly what `etcd get --prefix KEY` prints on stdout (json.dumps(..., indent=4) + newline)."""
        return self.etcd("get", "--prefix", "--", key).stdout

    def get_prefix(self, key: str) -> dict[str, Any]:
        text = self.get_prefix_text(key)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise OracleError(f"oracle `etcd get --prefix` printed no JSON ({e}): {text[:300]!r}") from None
        if not isinstance(data, dict):
            raise OracleError(f"oracle `etcd get --prefix` printed a {type(data).__name__}, not an object")
        return data

    def delete(self, key: str, *, prefix: bool = False) -> subprocess.CompletedProcess[str]:
        """`etcd delete [--prefix] KEY`. With --prefix it is a RAW string prefix (docs/backendai-etcd.md#the-cli)."""
        return self.etcd("delete", *(["--prefix"] if prefix else []), "--", key)

    def rescan_images(self, registry: str) -> subprocess.CompletedProcess[str]:
        """`etcd rescan-images REGISTRY`. Assert on the `images/...` keys afterwards: it can fail silently."""
        return self.etcd("rescan-images", "--", registry)

    def alias(self, alias: str, target: str) -> subprocess.CompletedProcess[str]:
        """`etcd alias ALIAS TARGET`: writes images/_aliases/<quote(ALIAS)> (docs/backendai-etcd.md#aliases)."""
        return self.etcd("alias", "--", alias, target)

    def dealias(self, alias: str) -> subprocess.CompletedProcess[str]:
        return self.etcd("dealias", "--", alias)

    def list_images(self, *, short: bool = False) -> str:
        """`etcd list-images [--short]` stdout: pprint()ed dicts, or a plain table with --short."""
        return self.etcd("list-images", *(["--short"] if short else [])).stdout

    def quote(self, value: str) -> str:
        return self.etcd("quote", "--", value).stdout.rstrip("\n")


# -- raw etcd access (etcdctl), independent of our EtcdStore ------------------------------

def etcdctl(port: int, *args: str, user: str | None = None, password: str | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """`etcdctl` v3 with credentials in the environment, so that no argv or error message carries them."""
    exe = shutil.which("etcdctl")
    if exe is None:
        raise RuntimeError("`etcdctl` is not installed; run `make deps`")
    env = {**os.environ, "ETCDCTL_API": "3"}
    env.pop("ETCDCTL_USER", None)
    if user:
        env["ETCDCTL_USER"] = f"{user}:{password or ''}"
    r = subprocess.run([exe, "--endpoints", f"{HOST}:{port}", *args], capture_output=True,
                       timeout=timeout, env=env)
    if r.returncode != 0:
        err = Redactor([password]).redact(r.stderr.decode("utf-8", "replace").strip()[-600:])
        raise RuntimeError(f"etcdctl {' '.join(args[:3])} failed (exit {r.returncode}): {err}")
    return r


def ns_prefix(namespace: str) -> bytes:
    if not namespace or "/" in namespace:
        raise ValueError(f"refusing namespace {namespace!r}: empty or containing '/'")
    return f"/sorna/{namespace}/".encode()


def raw_namespace(port: int, namespace: str, *, user: str | None = None,
                  password: str | None = None) -> dict[bytes, bytes]:
    """Every key/value under `/sorna/<ns>/`, prefix stripped, as raw bytes, sorted by key."""
    prefix = ns_prefix(namespace)
    r = etcdctl(port, "get", "--prefix", prefix.decode(), "-w", "json", user=user, password=password)
    data = json.loads(r.stdout)
    out: dict[bytes, bytes] = {}
    for kv in data.get("kvs", []):
        key = base64.b64decode(kv["key"])
        value = base64.b64decode(kv.get("value", ""))
        if not key.startswith(prefix):
            raise AssertionError(f"etcdctl returned {key!r} outside {prefix!r}")
        out[key[len(prefix):]] = value
    return dict(sorted(out.items()))


def raw_delete_namespace(port: int, namespace: str, *, user: str | None = None,
                         password: str | None = None) -> int:
    """Deletes `/sorna/<ns>/` and below (our store refuses that on purpose); returns the count."""
    r = etcdctl(port, "del", "--prefix", ns_prefix(namespace).decode(), user=user, password=password)
    text = r.stdout.decode().strip()
    return int(text) if text.isdigit() else 0


def unique_namespace(tag: str = "t") -> str:
    """A namespace no other test or sandbox uses (`local` is the sandbox's)."""
    return f"bairm-{tag}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def oracle_on_fresh_namespace(port: int, *, user: str | None, password: str | None,
                              tag: str = "oracle") -> Iterator[Oracle]:
    """An Oracle on a brand-new namespace, wiped (raw) and its workdir removed afterwards."""
    ns = unique_namespace(tag)
    oracle = Oracle.create(etcd_port=port, namespace=ns, etcd_user=user, etcd_password=password)
    try:
        yield oracle
    finally:
        oracle.close()
        raw_delete_namespace(port, ns, user=user, password=password)
