"""The emulator's FHIR store: resources in memory, transactions all-or-nothing, token searches.

One lock serialises every write, so two onsite sync workers sending the same Bundle at once
still leave one of each resource: the second transaction sees what the first committed.
No Flask here; the views parse HTTP and call these methods.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from shared.tokens import KeyRing

from ..validation import check_resource
from .base import (
    _BY_VALUE,
    _ID,
    _REFERENCES,
    _RESULT_PARAMS,
    _WITH_STATUS,
    Control,
    FhirError,
    Resource,
    _content,
    _identifier_values,
    _Plan,
    _reference_match,
    _token_match,
    _walk,
    identifiers,
    now_iso,
)
from .bundle import _absorb_binary, _add_jwks, _check_targets, _checked_entries, _rewrite
from .view import _View


@dataclass
class Store:
    """All resources by type and id, the keys received from onsite servers, and the control."""

    data: dict[str, dict[str, Resource]] = field(default_factory=dict)
    # (type, identifier value) -> ids: conditional creates and updates look up by identifier,
    # and a scan of every stored resource per entry would make a long sync quadratic.
    by_identifier: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    ring: KeyRing = field(default_factory=KeyRing)
    control: Control = field(default_factory=Control)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- reading ---------------------------------------------------------------------------

    def read(self, kind: str, rid: str) -> Resource | None:
        """Return a copy of one resource, or None."""
        with self.lock:
            found = self.data.get(kind, {}).get(rid)
            return copy.deepcopy(found) if found is not None else None

    def all(self, kind: str) -> list[Resource]:
        """Return copies of every resource of a type, oldest first."""
        with self.lock:
            return copy.deepcopy(list(self.data.get(kind, {}).values()))

    def counts(self) -> dict[str, int]:
        """Return how many resources of each type are stored."""
        with self.lock:
            return {k: len(v) for k, v in sorted(self.data.items()) if v}

    def _ref_identifiers(self, reference: Any, view: _View) -> list[Mapping[str, Any]]:
        """Return a reference's logical identifier plus its target's identifiers."""
        if not isinstance(reference, dict):
            return []
        found = [reference["identifier"]] if isinstance(reference.get("identifier"),
                                                       dict) else []
        literal = reference.get("reference")
        if isinstance(literal, str) and literal.count("/") == 1:
            target = view.get(*literal.split("/"))
            if target is not None:
                found += identifiers(target)
        return found

    def _index(self, kind: str, rid: str, resource: Resource) -> None:
        """Point the identifier index at a resource's new identifiers, not its old ones."""
        old = self.data.get(kind, {}).get(rid)
        for ident in identifiers(old or {}):
            self.by_identifier.get((kind, str(ident.get("value"))), set()).discard(rid)
        for ident in identifiers(resource):
            self.by_identifier.setdefault((kind, str(ident.get("value"))), set()).add(rid)

    def reference_identifiers(self, reference: Any) -> list[Mapping[str, Any]]:
        """Return the identifiers a reference names: its own and its target's."""
        with self.lock:
            return copy.deepcopy(self._ref_identifiers(reference, _View(self, {})))

    def search(self, kind: str, params: Iterable[tuple[str, str]]) -> tuple[list[Resource],
                                                                              list[str]]:
        """Return the matches of a search and the parameters that were not understood."""
        with self.lock:
            return self._search(_View(self, {}), kind, list(params))

    def _search(self, view: _View, kind: str,
                params: list[tuple[str, str]]) -> tuple[list[Resource], list[str]]:
        tests: list[Callable[[Resource], bool]] = []
        ignored: list[str] = []
        for name, value in params:
            if name in _RESULT_PARAMS:
                continue
            test = self._test(view, kind, name, value)
            if test is None:
                ignored.append(name)
            else:
                tests.append(test)
        candidates = view.values(kind, _identifier_values(params))
        return [copy.deepcopy(r) for r in candidates if all(t(r) for t in tests)], ignored

    def _test(self, view: _View, kind: str, name: str,
              value: str) -> Callable[[Resource], bool] | None:
        """Return the predicate of one search parameter, or None when it is not supported."""
        base, _, modifier = name.partition(":")
        base, dot, chained = base.partition(".")
        paths = _REFERENCES.get((kind, base))

        def by_identifier(r: Resource) -> bool:
            return _token_match(value, identifiers(r), kind in _BY_VALUE)

        def by_id(r: Resource) -> bool:
            return r.get("id") in value.split(",")

        def by_status(r: Resource) -> bool:
            return r.get("status") in value.split(",")

        def by_reference_identifier(r: Resource) -> bool:
            return any(_token_match(value, self._ref_identifiers(ref, view), True)
                       for path in paths or () for ref in _walk(r, path))

        def by_reference(r: Resource) -> bool:
            return any(_reference_match(value, ref) for path in paths or ()
                       for ref in _walk(r, path))

        if name == "identifier":
            return by_identifier
        if name == "_id":
            return by_id
        if name == "status" and kind in _WITH_STATUS:
            return by_status
        if paths and ((dot and chained == "identifier") or (not dot and modifier == "identifier")):
            return by_reference_identifier
        if paths and not dot and not modifier:
            return by_reference
        return None

    # -- writing ---------------------------------------------------------------------------

    def transaction(self, bundle: Any) -> Resource:
        """Apply a transaction Bundle all-or-nothing; return the transaction-response Bundle."""
        entries = _checked_entries(bundle)
        with self.lock:
            view = _View(self, {})
            urns: dict[str, str] = {}
            plans: list[_Plan] = []
            # FHIR's order of processing: creates, then updates (reads are not supported).
            order = sorted(range(len(entries)),
                           key=lambda i: 0 if entries[i]["request"]["method"] == "POST" else 1)
            for i in order:
                plan = self._plan(view, i, entries[i])
                plans.append(plan)
                full_url = entries[i].get("fullUrl")
                if isinstance(full_url, str) and full_url.startswith("urn:"):
                    urns[full_url] = f"{plan.kind}/{plan.rid}"
            stamp = now_iso()
            ring = copy.deepcopy(self.ring)
            for plan in plans:
                if plan.resource is None:
                    continue
                _rewrite(plan.resource, urns, view, plan.index)
                _check_targets(plan.resource, view, plan.index)
                _absorb_binary(plan.resource, ring, plan.index)
                old = self.data.get(plan.kind, {}).get(plan.rid)
                plan.resource["id"] = plan.rid
                version = 1
                if old is not None:
                    version = int(old["meta"]["versionId"])
                    if _content(old) != _content(plan.resource):
                        version += 1
                # The client's profiles and tags stay; the version and time are the server's.
                sent_meta = plan.resource.get("meta")
                plan.resource["meta"] = {**(sent_meta if isinstance(sent_meta, dict) else {}),
                                         "versionId": str(version), "lastUpdated": (
                    stamp if old is None or str(version) != old["meta"]["versionId"]
                    else old["meta"]["lastUpdated"])}
            # Nothing failed: commit every write at once.
            for plan in plans:
                if plan.resource is not None:
                    self._index(plan.kind, plan.rid, plan.resource)
                    self.data.setdefault(plan.kind, {})[plan.rid] = plan.resource
            self.ring = ring
            responses: dict[int, Resource] = {}
            for plan in plans:
                stored = self.data[plan.kind][plan.rid]
                version = stored["meta"]["versionId"]
                responses[plan.index] = {"response": {
                    "status": "201 Created" if plan.created else "200 OK",
                    "location": f"{plan.kind}/{plan.rid}/_history/{version}",
                    "etag": f'W/"{version}"', "lastModified": stored["meta"]["lastUpdated"]}}
        return {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                "type": "transaction-response",
                "entry": [responses[i] for i in range(len(entries))]}

    def _plan(self, view: _View, index: int, entry: Resource) -> _Plan:
        request = entry["request"]
        method, url = request["method"], request["url"]
        resource = copy.deepcopy(entry["resource"])
        kind = resource["resourceType"]
        where = f"Bundle.entry[{index}].request.url"
        path, _, query = url.partition("?")
        parts = path.strip("/").split("/")
        if parts[0] != kind:
            raise FhirError(400, "invalid", f"entry {index}: the url names {parts[0]!r} but "
                            f"the resource is a {kind}", where)
        if method == "POST":
            if len(parts) != 1 or query:
                raise FhirError(400, "invalid", f"entry {index}: POST goes to the type", where)
            condition = request.get("ifNoneExist")
            if condition:
                found = self._conditional(view, kind, condition, index)
                if found is not None:
                    return _Plan(index, kind, found, method, None, False)
            rid = str(uuid.uuid4())
        elif query:
            if len(parts) != 1:
                raise FhirError(400, "invalid", f"entry {index}: a conditional update names "
                                "no id", where)
            found = self._conditional(view, kind, query, index)
            if found is not None and resource.get("id") not in (None, found):
                raise FhirError(400, "invalid", f"entry {index}: the resource's id is not the "
                                "one its condition matched", f"Bundle.entry[{index}].resource.id")
            rid = found or str(uuid.uuid4())
        else:
            if len(parts) != 2 or not _ID.match(parts[1]):
                raise FhirError(400, "invalid", f"entry {index}: PUT needs Type/id or "
                                "Type?identifier=...", where)
            rid = parts[1]
            if resource.get("id") not in (None, rid):
                raise FhirError(400, "invalid", f"entry {index}: the resource's id is not the "
                                "one in the url", f"Bundle.entry[{index}].resource.id")
        current = view.get(kind, rid)
        expected = request.get("ifMatch")
        if expected is not None:
            # Optimistic locking (FHIR "managing resource contention"): the write goes only
            # onto the version the client read; anything else is someone else's change.
            held = None if current is None else f'W/"{current["meta"]["versionId"]}"'
            if held is None or str(expected).removeprefix("W/") != held.removeprefix("W/"):
                raise FhirError(412, "conflict", f"entry {index}: {kind}/{rid} is at "
                                f"{held or 'no version'}, not {expected}: it changed since "
                                "it was read", f"Bundle.entry[{index}].request.ifMatch")
        created = current is None
        resource["id"] = rid
        view.staged[(kind, rid)] = resource
        return _Plan(index, kind, rid, method, resource, created)

    def _conditional(self, view: _View, kind: str, query: str, index: int) -> str | None:
        params = parse_qsl(query, keep_blank_values=True)
        # Any search parameter the store understands, as a real server allows; one it does
        # not understand would match everything, so it is refused.
        if not params or any(n in _RESULT_PARAMS or self._test(view, kind, n, v) is None
                             for n, v in params):
            raise FhirError(400, "not-supported", f"entry {index}: the condition {query!r} "
                            "uses a search parameter this server does not support",
                            f"Bundle.entry[{index}].request")
        matches, _ = self._search(view, kind, params)
        if len(matches) > 1:
            raise FhirError(412, "multiple-matches", f"entry {index}: the condition {query!r} "
                            f"matches {len(matches)} resources", f"Bundle.entry[{index}]")
        return str(matches[0]["id"]) if matches else None

    def add_keys(self, jwks: Any, revoked: Iterable[str] = ()) -> int:
        """Trust the keys of a JWK Set (and revoke token ids); return how many keys came."""
        with self.lock:
            ring = copy.deepcopy(self.ring)
            count = _add_jwks(ring, jwks)
            try:
                ring.revoke(revoked)
            except (TypeError, ValueError) as exc:
                raise FhirError(400, "invalid", f"revoked: {exc}") from exc
            self.ring = ring
            return count

    def verify_ring(self) -> KeyRing:
        """Return a snapshot of the keys and revocations to verify tokens with."""
        with self.lock:
            return copy.deepcopy(self.ring)

    def put(self, resource: Resource) -> Resource:
        """Store a resource under its own id (the demo directory, the call requests)."""
        check_resource(resource)
        kind = resource["resourceType"]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": resource, "request": {"method": "PUT",
                                               "url": f"{kind}/{resource['id']}"}}]}
        self.transaction(bundle)
        stored = self.read(kind, resource["id"])
        assert stored is not None
        return stored

    def reset(self) -> None:
        """Forget everything: resources, keys, revocations and the control mode."""
        with self.lock:
            self.data = {}
            self.by_identifier = {}
            self.ring = KeyRing()
            self.control = Control()
