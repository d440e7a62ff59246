"""The emulator stays separate: it may use shared and fhir.resources, never onsite_server."""

from __future__ import annotations

import ast
from pathlib import Path

import central_emulator

FORBIDDEN = ("onsite_server", "kiosk")


def test_the_emulator_imports_no_product_package() -> None:
    root = Path(central_emulator.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert found == []
