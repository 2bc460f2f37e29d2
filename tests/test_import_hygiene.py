"""The layering rule (CONTRIBUTING.md, "Layout and dependency rules"): backends/ never imports the UI;
widgets/ never imports tui/ or backends/.

Checked twice, as harlequin does: statically over every module's import statements, and at
run time in a clean interpreter (importing every backends module must not load textual/rich).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(pkg: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / pkg).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


def test_backends_never_import_the_ui() -> None:
    bad = {f: n & {"textual", "rich", "tui", "widgets"} for f, n in _imports("backends").items()}
    bad = {f: n for f, n in bad.items() if n}
    assert not bad, f"backends/ imports the UI layer: {bad}"
    assert len(_imports("backends")) > 20


def test_widgets_never_import_tui_or_backends() -> None:
    bad = {f: n & {"tui", "backends"} for f, n in _imports("widgets").items()}
    bad = {f: n for f, n in bad.items() if n}
    assert not bad, f"widgets/ imports tui/ or backends/: {bad}"


def test_backends_load_without_textual_at_run_time() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import backends\n"
        "for m in pkgutil.walk_packages(backends.__path__, 'backends.'):\n"
        "    if m.name.endswith('__main__'): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'tui', 'widgets'))\n"
        "print(len([n for n in sys.modules if n.startswith('backends.')]), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    loaded = int(r.stdout.split()[0])
    assert loaded > 20, r.stdout
