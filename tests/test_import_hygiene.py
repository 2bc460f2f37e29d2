"""The layering rules (CONTRIBUTING.md, "Layout and dependency rules"): widgets <- tui -> backends,
and the seam between them.

- backends/ never imports the UI; widgets/ never imports tui/ or backends/. Checked twice, as
  harlequin does: statically over every module's import statements, and at run time in a clean
  interpreter (importing every backends module must not load textual/rich).
- A step module never imports another step module: what two steps share lives in a module
  that is not a step (alias_analysis, agents, views, edits), so a step's internals stay its own.
- tui/ renders what the engine exposes and never its storage: no etcd key layout, no journal
  key, no table keyed by step id, no reading of a plan's private data.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from backends.steps import STEP_CLASSES

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


def _step_modules() -> dict[str, str]:
    """module name (backends.steps.X) -> step id, for every module that defines a step."""
    return {cls.__module__: cls.meta.id for cls in STEP_CLASSES.values()}


def test_steps_never_import_each_other() -> None:
    steps = _step_modules()
    bad = {}
    for path in (ROOT / "backends" / "steps").glob("*.py"):
        mod = f"backends.steps.{path.stem}"
        if mod not in steps:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                other = f"backends.steps.{node.module}"
                if other in steps and other != mod:
                    bad.setdefault(mod, []).append(other)
    assert not bad, f"step modules import other steps' internals: {bad}"
    assert len(steps) == len(STEP_CLASSES) >= 9


def _tui_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in (ROOT / "tui").rglob("*")
            if p.suffix in (".py", ".tcss")}


def test_tui_knows_no_storage() -> None:
    """No etcd key layout (`images/`, `config/docker/registry`, `_aliases`, quote()), no journal
    key (`pull:`, `rmi:`, `manager-stopped`...), no plan data (`.data[`, `.data.get(`), no
    journal or state access, in any tui/ module."""
    patterns = {
        "etcd key layout": r"[\"'](?:images/|config/docker|manager/status|_aliases)|\bquote\(|backends\.etcd\b",
        "journal key": r"[\"'](?:pull:|rmi:|manager-stopped|config-written|images-written|manager-started)",
        "journal access": r"\.journal(?:ed|_value)?\b",
        "plan data": r"\.data\[|\.data\.get\(",
        "state access": r"\.state\.step\(|\.steps\[|backends\.state\b",
    }
    found = {f"{path}: {what}": m.group(0) for path, text in _tui_sources().items()
             for what, rx in patterns.items() for m in [re.search(rx, text)] if m}
    assert not found, f"tui/ reads the engine's storage: {found}"


def _step_id_uses(tree: ast.AST, ids: set[str]) -> list[tuple[int, str]]:
    """Literal collections naming two or more step ids (a table keyed by step), and comparisons
    of something called step with a step id (a per-step branch)."""
    def strs(node: ast.AST) -> list[str]:
        elts = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", [])
        return [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]

    def stepish(node: ast.AST) -> bool:
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        return "step" in name.lower()

    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Dict, ast.Set, ast.Tuple, ast.List)) and len(set(strs(node)) & ids) >= 2:
            out.append((node.lineno, "a literal naming several steps"))
        elif isinstance(node, ast.Compare) and stepish(node.left):
            for comp in node.comparators:
                named = {comp.value} if isinstance(comp, ast.Constant) else set(strs(comp))
                if named & ids:
                    out.append((node.lineno, "a branch on a step id"))
    return out


def test_tui_has_no_table_keyed_by_step_id() -> None:
    """Per-step knowledge (titles, what is skippable, which steps have a grid, how inputs are
    saved) is in each step's metadata; tui/ may name a step only where a screen declares the one
    step it shows (`STEP = "..."`)."""
    ids = {cls.meta.id for cls in STEP_CLASSES.values()}
    found = [f"{path}:{line}: {what}" for path, text in _tui_sources().items() if path.endswith(".py")
             for line, what in _step_id_uses(ast.parse(text), ids)]
    assert not found, "per-step tables or branches in tui/:\n" + "\n".join(found)
    # the check itself finds what it is meant to find
    assert _step_id_uses(ast.parse('X = {"prepull": 1, "aliases": 2}\nif step == "verify": pass'), ids) == [
        (1, "a literal naming several steps"), (2, "a branch on a step id")]
