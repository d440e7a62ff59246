"""scripts/limits.py: the module-length and complexity limits of the test command's lint step."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _limits() -> ModuleType:
    spec = importlib.util.spec_from_file_location("limits", ROOT / "scripts" / "limits.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["limits"] = module
    spec.loader.exec_module(module)
    return module


def _complex_function(branches: int) -> str:
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(branches))
    return f"def pick(x):\n{body}    return -1\n"


def test_long_modules_and_complex_functions_are_named(tmp_path: Path) -> None:
    limits = _limits()
    (tmp_path / "long.py").write_text("x = 1\n" * 501)
    (tmp_path / "short.py").write_text("x = 1\n" * 500)
    (tmp_path / "tangled.py").write_text(_complex_function(20))  # complexity 21
    (tmp_path / "plain.py").write_text(_complex_function(19))  # complexity 20: allowed
    found = limits.offenders([tmp_path])
    assert len(found) == 2
    assert found[0].endswith("long.py: 501 lines (limit 500)")
    assert found[1].endswith("tangled.py:1 pick: complexity 21 (limit 20)")


def test_report_only_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    limits = _limits()
    (tmp_path / "tangled.py").write_text(_complex_function(25))
    assert limits.main([str(tmp_path)]) == 0
    assert "complexity 26" in capsys.readouterr().err
    assert limits.main(["--strict", str(tmp_path)]) == 1
    (tmp_path / "tangled.py").write_text(_complex_function(3))
    assert limits.main(["--strict", str(tmp_path)]) == 0
