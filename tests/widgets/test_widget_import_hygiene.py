"""widgets/ never imports tui/ or backends/ (CONTRIBUTING.md, "Layout and dependency rules")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

WIDGETS = Path(__file__).resolve().parents[2] / "widgets"
FORBIDDEN = ("tui", "backends")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_widget_module_names_tui_or_backends() -> None:
    files = sorted(WIDGETS.glob("*.py"))
    assert len(files) >= 12
    offenders = {
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert offenders == set()


def test_importing_widgets_loads_neither_tui_nor_backends() -> None:
    code = (
        "import sys, widgets, widgets.items, widgets.pull_grid, widgets.json_editor\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tui', 'backends'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=WIDGETS.parent, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""
