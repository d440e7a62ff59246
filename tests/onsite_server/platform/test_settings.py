"""The typed settings: converted once in create_app, named on a bad value, frozen after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from onsite_server import create_app
from onsite_server.app_settings import current, of, override
from onsite_server.config import DEFAULTS, ConfigError
from onsite_server.settings import CentralSettings, Settings

pytestmark = pytest.mark.sqlite_only


def _app(tmp_path: Path, **config: Any) -> Flask:
    return create_app({"INSTANCE_PATH": str(tmp_path / "i"), **config})


def test_every_default_key_is_a_typed_field() -> None:
    fields = {name.upper() for name in Settings.__dataclass_fields__}
    assert fields == set(DEFAULTS)


def test_values_from_the_instance_file_are_converted_once(tmp_path: Path) -> None:
    instance = tmp_path / "i"
    instance.mkdir()
    (instance / "config.py").write_text(
        "SYNC_BATCH = '7'\nREMINDER_HOURS = 2\nLANGUAGES = 'en, es'\nMULTI_NODE = 'no'\n")
    settings = of(_app(tmp_path))
    assert settings.sync_batch == 7 and isinstance(settings.sync_batch, int)
    assert settings.reminder_hours == 2.0 and isinstance(settings.reminder_hours, float)
    assert settings.languages == ("en", "es")
    assert settings.multi_node is False


@pytest.mark.parametrize(("key", "value", "message"), [
    ("SYNC_BATCH", "twenty", "SYNC_BATCH must be a number, got 'twenty'"),
    ("IDENTIFY_MIN_SECONDS", [1], "IDENTIFY_MIN_SECONDS must be a number"),
    ("CENTRAL_ALLOW_INSECURE_HTTP", "maybe", "CENTRAL_ALLOW_INSECURE_HTTP must be true or false"),
    ("ENABLED_INSTRUMENTS", 5, "ENABLED_INSTRUMENTS must be a list"),
    ("SYNC_BATCH", 0, "SYNC_BATCH must be at least 1"),
])
def test_a_bad_value_stops_the_start_naming_the_setting(tmp_path: Path, key: str, value: Any,
                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _app(tmp_path, **{key: value})


def test_the_settings_are_frozen(tmp_path: Path) -> None:
    app = _app(tmp_path)
    settings = of(app)
    with pytest.raises(AttributeError):
        settings.sync_batch = 3  # type: ignore[misc]
    # Written to app.config, a setting would not reach the typed object: refused loudly.
    with pytest.raises(RuntimeError, match="MIN_CELL is a setting"):
        app.config["MIN_CELL"] = 12
    with pytest.raises(RuntimeError, match="MIN_CELL is a setting"):
        app.config.update(MIN_CELL=12)
    app.config["SOME_EXTENSION_KEY"] = 1  # Flask's and extensions' own keys stay writable
    assert of(app).min_cell == DEFAULTS["MIN_CELL"]


def test_override_converts_and_checks_as_at_start(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert override(app, MIN_CELL="12").min_cell == 12
    assert app.config["MIN_CELL"] == "12"  # the raw layer keeps what was given
    with app.app_context():
        assert current().min_cell == 12
    with pytest.raises(ConfigError, match="MIN_CELL must be at least 5"):
        override(app, MIN_CELL=4)
    assert of(app).min_cell == 12  # a refused change changes nothing
    with pytest.raises(ConfigError, match="NOT_A_SETTING"):
        override(app, NOT_A_SETTING=1)


def test_central_settings_take_defaults_for_missing_keys() -> None:
    central = CentralSettings.from_config({"CENTRAL_URL": "https://central.example/fhir"})
    assert central.central_read_timeout_seconds == DEFAULTS["CENTRAL_READ_TIMEOUT_SECONDS"]
    assert central.central_token is None and central.central_allow_insecure_http is False


# Modules that still cast raw keys, each to move to the typed settings with its area's work
# (issue 17 §5): the submissions batch settings (services/submissions), the FHIR identifier
# systems (fhir/builders/facts.py), the reports' cell minimum, and the clock policy they share.
STILL_CASTING = {
    "services/submissions/context.py": 4, "fhir/builders/facts.py": 3,
    "dashboard/reports.py": 1,
    "services/clock.py": 2,
    # Before the conversion: the instance folder named by a test, central's web address
    # derived from CENTRAL_URL when unset.
    "__init__.py": 2,
}


def _raw_casts() -> dict[str, int]:
    """int/float/bool/str/Path(... config[KEY] or config.get(KEY) ...) calls, per module."""
    import ast

    root = Path(__file__).resolve().parents[3] / "onsite_server"

    def is_raw(node: ast.AST) -> bool:
        if isinstance(node, ast.BoolOp):
            return any(is_raw(value) for value in node.values)
        if isinstance(node, ast.Subscript):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get":
            target = node.func.value
        else:
            return False
        return ast.unparse(target).endswith("config")

    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("int", "float", "bool", "str", "Path") and node.args \
                    and is_raw(node.args[0]):
                name = str(path.relative_to(root))
                found[name] = found.get(name, 0) + 1
    return found


def test_no_code_casts_a_raw_setting() -> None:
    # 120 such casts before the typed settings; what remains is listed above, by area, and
    # may only shrink.
    over = {name: count for name, count in _raw_casts().items()
            if count > STILL_CASTING.get(name, 0)}
    assert over == {}
