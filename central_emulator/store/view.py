"""The store as one transaction sees it: committed resources plus its own staged writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .base import Resource, identifiers


class Holds(Protocol):
    """The store's maps, as a view reads them, and its search (conditional references)."""

    data: dict[str, dict[str, Resource]]
    by_identifier: dict[tuple[str, str], set[str]]

    def _search(self, view: _View, kind: str,
                params: list[tuple[str, str]]) -> tuple[list[Resource], list[str]]:
        """The matches of a search as the view sees the store, and the ignored parameters."""


@dataclass
class _View:
    """The store as a transaction sees it: committed resources plus its own staged writes."""

    store: Holds
    staged: dict[tuple[str, str], Resource]

    def get(self, kind: str, rid: str) -> Resource | None:
        """Return a staged or committed resource (not a copy: callers only read it)."""
        return self.staged.get((kind, rid), self.store.data.get(kind, {}).get(rid))

    def values(self, kind: str, only: set[str] | None = None) -> list[Resource]:
        """Return the resources of a type, staged ones replacing committed ones; with ``only``,
        just those carrying one of these identifier values."""
        committed = self.store.data.get(kind, {})
        if only is None:
            merged = dict(committed)
        else:
            ids: set[str] = set()
            for value in only:
                ids |= self.store.by_identifier.get((kind, value), set())
            merged = {rid: committed[rid] for rid in sorted(ids) if rid in committed}
        for (k, rid), resource in self.staged.items():
            if k == kind and (only is None or {str(i.get("value")) for i in
                                               identifiers(resource)} & only):
                merged[rid] = resource
            elif k == kind:
                merged.pop(rid, None)
        return list(merged.values())
