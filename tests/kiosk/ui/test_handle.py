"""KioskHandle (kiosk/ui/base.py), the screens' typed view of KioskApp, fits the real app.

mypy cannot check the fit itself: KioskApp derives from Kivy's untyped App, so it passes for
any protocol. This reads the sources instead (no Kivy import, so no window in this process).
"""

from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[3] / "kiosk" / "ui"


def _class(path: Path, name: str) -> ast.ClassDef:
    """The class ``name`` defined at the top of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _methods(cls: ast.ClassDef) -> dict[str, list[str]]:
    """Method name -> its parameter names, in order (``*args`` and ``**kwargs`` included)."""
    found: dict[str, list[str]] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
            names += [f"*{a.vararg.arg}"] if a.vararg else []
            names += [f"**{a.kwarg.arg}"] if a.kwarg else []
            found[node.name] = names
    return found


def _attributes(cls: ast.ClassDef) -> set[str]:
    """Names the class declares, assigns (in its body or as ``self.<name> = ...``) or reads
    through a property."""
    found: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
            found.add(node.name)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                found.add(target.id)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                    and target.value.id == "self":
                found.add(target.attr)
    return found


def test_kiosk_app_has_every_method_of_the_handle_with_the_same_parameters() -> None:
    handle = _methods(_class(UI / "base.py", "KioskHandle"))
    app = _methods(_class(UI / "admin_mode.py", "AdminMode"))
    app.update(_methods(_class(UI / "app.py", "KioskApp")))
    assert handle, "KioskHandle declares no methods"
    for name, params in handle.items():
        assert name in app, f"KioskApp has no {name}()"
        assert app[name] == params, f"{name}: KioskApp takes {app[name]}, the handle {params}"


def test_kiosk_app_holds_every_attribute_of_the_handle() -> None:
    handle = _class(UI / "base.py", "KioskHandle")
    declared = {n.target.id for n in handle.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    held = _attributes(_class(UI / "admin_mode.py", "AdminMode")) \
        | _attributes(_class(UI / "app.py", "KioskApp"))
    assert declared and declared <= held, f"KioskApp lacks {sorted(declared - held)}"
