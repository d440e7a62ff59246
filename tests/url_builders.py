"""Werkzeug's URL builders, compiled once per test process instead of once per app.

Every server test builds an app, and each app binds its 70-odd URL rules into a fresh map.
Binding compiles two small Python functions per rule (one that builds the rule's URL, one that
also appends unknown arguments) from a generated syntax tree: 28 of the 35 ms of CPU that
``create_app`` takes here, about a tenth of the in-process server tests' CPU
(docs/BENCHMARKS.md, "Session 10: the tests' CPU").

A builder is a plain function of the rule's parsed parts and defaults: it takes the rule as its
first argument and reaches the rule's converters through it, so one compiled function serves
every rule with the same parts. Nothing else of routing is shared; each app's map, rules,
converters and matching are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing.rules import Rule

_Builder = Callable[..., tuple[str, str]]
_compiled: dict[tuple[Any, ...], _Builder] = {}
_original: Callable[[Rule, bool], _Builder] | None = None


def _key(rule: Rule, append_unknown: bool) -> tuple[Any, ...]:
    """What the generated builder depends on: parts, defaults as they appear, the mode."""
    # _compile_builder turns a default given for a part of the rule into a constant of the
    # code, through the part's converter; other defaults only name keyword arguments.
    defaults = rule.defaults or {}
    dynamic = {data for is_dynamic, data in rule._trace if is_dynamic}
    folded = tuple(sorted(
        (name, rule._converters[name].to_url(value) if name in dynamic else None)
        for name, value in defaults.items()))
    return (rule.rule, tuple(rule._trace), folded, append_unknown)


def _compile_once(rule: Rule, append_unknown: bool = True) -> _Builder:
    """The builder for rule's parts, compiled the first time they are seen in this process."""
    assert _original is not None
    key = _key(rule, append_unknown)
    builder = _compiled.get(key)
    if builder is None:
        builder = _compiled[key] = _original(rule, append_unknown)
    return builder


def reuse_url_builders() -> None:
    """Make every Rule this process binds reuse a builder compiled for the same parts."""
    global _original
    if _original is None:
        _original = Rule._compile_builder
        Rule._compile_builder = _compile_once  # type: ignore[method-assign,assignment]


def compiled_count() -> int:
    """How many distinct builders this process has compiled (for the test of the reuse)."""
    return len(_compiled)


def compile_afresh(rule: Rule, append_unknown: bool) -> _Builder:
    """Werkzeug's own compile of rule's builder, bypassing the reuse (for the test)."""
    original = _original or Rule._compile_builder
    return original(rule, append_unknown)
