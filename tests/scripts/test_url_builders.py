"""The tests' reuse of Werkzeug's URL builders (tests/url_builders.py) builds what Werkzeug does."""

from __future__ import annotations

from pathlib import Path

from werkzeug.routing.converters import AnyConverter, NumberConverter

from onsite_server import create_app

from ..url_builders import compile_afresh, compiled_count, reuse_url_builders


def _app(folder: Path, name: str):  # type: ignore[no-untyped-def]
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / name}.sqlite",
                       "INSTANCE_PATH": str(folder / name), "SECRET_KEY": "x" * 32})


def _values(rule) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """A value for each of the rule's arguments that its converter accepts."""
    values: dict[str, object] = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if isinstance(converter, NumberConverter):  # the app's DatabaseId among them
            values[name] = 7
        elif isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[-1]
        else:
            values[name] = "a b/é"
    return values


def test_every_rule_of_a_second_app_builds_what_a_fresh_compile_builds(tmp_path: Path) -> None:
    """Rule by rule, with and without unknown arguments, the reused builder's URL is Werkzeug's.

    The second app compiles nothing new: its rules have the parts of the first app's.
    """
    reuse_url_builders()
    _app(tmp_path, "first")
    before = compiled_count()
    second = _app(tmp_path, "second")
    assert compiled_count() == before
    rules = list(second.url_map.iter_rules())
    assert len(rules) > 50
    for rule in rules:
        values = _values(rule)
        extra = {**values, "page": "2", "q": "x y"}
        assert rule.build(values, append_unknown=False) == \
            compile_afresh(rule, False)(rule, **values), rule.rule
        assert rule.build(extra) == compile_afresh(rule, True)(rule, **extra), rule.rule


def test_rules_with_other_parts_get_builders_of_their_own(tmp_path: Path) -> None:
    """A default folded into the URL makes a different builder: no two parts share one."""
    from werkzeug.routing import Map, Rule

    reuse_url_builders()
    first = Map([Rule("/page/<int:n>", endpoint="a", defaults={"n": 1}),
                 Rule("/page/<int:n>", endpoint="b")]).bind("example.org")
    second = Map([Rule("/page/<int:n>", endpoint="a", defaults={"n": 2})]).bind("example.org")
    assert first.build("a") == "/page/1"
    assert first.build("b", {"n": 5}) == "/page/5"
    assert second.build("a") == "/page/2"
