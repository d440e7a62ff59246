"""A cheap nesting check on a JSON body, run before the body is parsed.

Python's JSON parser recurses once per level, so ``[[[[...]]]]`` a few thousand levels deep
raises RecursionError deep inside the request (a 500 with a traceback). This check runs in C
speed string operations only: escape pairs are removed (so every quote left opens or closes a
string), then everything but quotes and brackets, then what lies between quotes (the strings'
own brackets), then the innermost bracket pairs level by level; anything left after ``limit``
rounds is too deep (or not JSON at all, which the parser then refuses without recursing).
"""

from __future__ import annotations

import re

MAX_DEPTH = 32

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
