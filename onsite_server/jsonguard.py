"""A cheap nesting check on a JSON body, run before the body is parsed; keys named twice.

Python's JSON parser recurses once per level, so ``[[[[...]]]]`` a few thousand levels deep
raises RecursionError deep inside the request (a 500 with a traceback). This check runs in C
speed string operations only: escape pairs are removed (so every quote left opens or closes a
string), then everything but quotes and brackets, then what lies between quotes (the strings'
own brackets), then the innermost bracket pairs level by level; anything left after ``limit``
rounds is too deep (or not JSON at all, which the parser then refuses without recursing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 32
# What a key named twice in one object is told: readers differ on which value counts.
REPEATED = "is named more than once in its object"

# A backslash and the character it escapes: inside a string (the only place JSON allows one)
# the pair never opens or closes it.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_MARK = bytes(b for b in range(256) if b not in b'"[]{}')



def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Tell whether a JSON text nests arrays and objects more than ``limit`` levels deep."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)
    # Quotes and brackets only; split at the quotes, the even pieces are outside the strings.
    # A regular expression over the whole text for the strings took 2.8 ms of a 250-item
    # kiosk batch (85 kB), 11 us an item; this takes 0.17 ms (docs/BENCHMARKS.md, session 11).
    brackets = b"".join(body.translate(None, _NOT_MARK).split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        # Arrays first, then objects: a round may take off one level of each, so what passes
        # nests at most 2 * limit deep, still far from the parser's recursion limit.
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            return False  # unbalanced: not JSON, and the parser says so without recursing
        brackets = shorter
    return bool(brackets)


class Repeated(dict[str, Any]):
    """A JSON object that names a key more than once: the last value kept, as ``json`` does.

    ``repeated`` holds every value of each such key, in order. What one reader of a body sees
    is then not what another does (a proxy or a log may keep the first): an answer named twice
    could hide a crisis behind a second, harmless value.
    """

    repeated: dict[str, list[Any]]


def loads(body: bytes) -> tuple[Any, bool]:
    """Parse a JSON body; return it and whether any object in it names a key twice.

    Raises ValueError for a body that is not JSON.
    """
    repeats: list[Repeated] = []

    def make(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) == len(pairs):
            return found
        out = Repeated(found)
        values: dict[str, list[Any]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        out.repeated = {key: seen for key, seen in values.items() if len(seen) > 1}
        repeats.append(out)
        return out

    return json.loads(body, object_pairs_hook=make), bool(repeats)


def repeated_paths(data: Any, path: str = "") -> Iterator[str]:
    """Yield the dotted path of every key an object in ``data`` names more than once."""
    if isinstance(data, dict):
        if isinstance(data, Repeated):
            for key in data.repeated:
                yield f"{path}.{key}" if path else key
        for key, value in data.items():
            if isinstance(value, dict | list):
                yield from repeated_paths(value, f"{path}.{key}" if path else key)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if isinstance(value, dict | list):
                yield from repeated_paths(value, f"{path}.{index}" if path else str(index))


def readings(data: Any) -> Iterator[Any]:
    """Yield ``data`` as parsed, then once more for each other value of each repeated key.

    Each other reading takes one repeated key's earlier value and keeps the rest as parsed,
    so a reader that looks at every reading (the crisis check) sees every value sent.
    """
    yield data
    if isinstance(data, dict):
        if isinstance(data, Repeated):
            for key, values in data.repeated.items():
                for value in values[:-1]:
                    yield {**data, key: value}
        for key, value in data.items():
            if isinstance(value, dict | list):
                for other in _others(value):
                    yield {**data, key: other}
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if isinstance(value, dict | list):
                for other in _others(value):
                    yield [*data[:index], other, *data[index + 1:]]


def _others(data: Any) -> Iterator[Any]:
    found = readings(data)
    next(found)  # the value as parsed is already in its parent's reading
    yield from found
