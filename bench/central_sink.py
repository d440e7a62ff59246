"""A central that answers at once, for ``bench/forwarding.py``: our cost without central's.

The emulator validates every resource again (about as long as our own validation), so a
benchmark against it measures two FHIR servers' work. This sink does what the sync needs of
central and nothing more, in memory: a transaction is answered with a valid
transaction-response (``201 Created`` for a conditional create that created, ``200 OK`` for
one that found its match, versions and ETags that count up), an ``If-Match`` on a stale
version is refused with 412, bundle references are rewritten to the ids it assigned, and a
search by ``identifier=system|value`` (comma-separated values allowed) returns what it holds.
It validates nothing. HTTP/1.1, so a client that keeps its connection open reuses it.

    python bench/central_sink.py --port 8765   # GET /fhir/metadata answers once it is up
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Resource = dict[str, Any]


class Store:
    """Resources by type and id, indexed by identifier; one lock for every write."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, Resource]] = {}
        self.by_identifier: dict[tuple[str, str], str] = {}  # (type, "system|value") -> id
        self.by_condition: dict[tuple[str, str], str] = {}  # other ifNoneExist conditions

    def _find(self, kind: str, condition: str) -> str | None:
        key, _, value = condition.partition("=")
        if key == "identifier":
            return self.by_identifier.get((kind, value))
        return self.by_condition.get((kind, condition))

    def _index(self, kind: str, rid: str, resource: Resource, condition: str | None) -> None:
        idents = resource.get("identifier") or []
        for ident in idents if isinstance(idents, list) else [idents]:
            if isinstance(ident, dict) and ident.get("value") is not None:
                self.by_identifier[(kind, f"{ident.get('system', '')}|{ident['value']}")] = rid
        if condition and not condition.startswith("identifier="):
            self.by_condition[(kind, condition)] = rid

    def transaction(self, bundle: Resource) -> tuple[int, Resource]:
        """Apply a transaction; return the HTTP status and the transaction-response."""
        entries = bundle.get("entry") or []
        with self.lock:
            urns: dict[str, str] = {}
            plans: list[tuple[str, str, Resource | None, bool, str | None]] = []
            for entry in entries:
                request, resource = entry["request"], entry["resource"]
                kind = resource["resourceType"]
                url = str(request["url"])
                condition = request.get("ifNoneExist")
                if request["method"] == "POST":
                    rid = self._find(kind, condition) if condition else None
                    plan = (kind, rid, None, False, None) if rid else \
                        (kind, str(uuid.uuid4()), resource, True, condition)
                elif "?" in url:
                    rid = self._find(kind, url.partition("?")[2])
                    plan = (kind, rid or str(uuid.uuid4()), resource, rid is None, None)
                else:
                    rid = url.split("/")[1]
                    held = self.data.get(kind, {}).get(rid)
                    wanted = request.get("ifMatch")
                    if wanted and (held is None or wanted != f'W/"{held["meta"]["versionId"]}"'):
                        return 412, _outcome("conflict", f"{kind}/{rid}: version mismatch")
                    plan = (kind, rid, resource, held is None, None)
                plans.append(plan)
                if str(entry.get("fullUrl", "")).startswith("urn:"):
                    urns[entry["fullUrl"]] = f"{plan[0]}/{plan[1]}"
            stamp = datetime.now(UTC).isoformat()
            replies: list[Resource] = []
            for kind, rid, resource, created, condition in plans:
                held = self.data.get(kind, {}).get(rid)
                if resource is None:
                    assert held is not None
                    version = held["meta"]["versionId"]
                else:
                    version = "1" if held is None else str(int(held["meta"]["versionId"]) + 1)
                    stored = _rewrite(resource, urns)
                    stored["id"] = rid
                    stored["meta"] = {**(stored.get("meta") or {}), "versionId": version,
                                      "lastUpdated": stamp}
                    self.data.setdefault(kind, {})[rid] = stored
                    self._index(kind, rid, stored, condition)
                replies.append({"response": {
                    "status": "201 Created" if created else "200 OK",
                    "location": f"{kind}/{rid}/_history/{version}", "etag": f'W/"{version}"',
                    "lastModified": stamp}})
        return 200, {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                     "type": "transaction-response", "entry": replies}

    def search(self, kind: str, identifiers: str) -> Resource:
        """Return a searchset of the resources with any of the given identifiers."""
        with self.lock:
            found = [self.data[kind][rid] for value in identifiers.split(",")
                     if (rid := self.by_identifier.get((kind, value))) is not None]
        return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                "entry": [{"resource": r, "search": {"mode": "match"}} for r in found]}

    def counts(self) -> dict[str, int]:
        """Return how many resources of each type are held."""
        with self.lock:
            return {kind: len(held) for kind, held in self.data.items()}


def _rewrite(value: Any, urns: dict[str, str]) -> Any:
    """Return a copy with bundle-local references (urn:uuid) replaced by the assigned ids."""
    if isinstance(value, list):
        return [_rewrite(v, urns) for v in value]
    if isinstance(value, dict):
        return {k: (urns.get(v, v) if k == "reference" and isinstance(v, str)
                    else _rewrite(v, urns)) for k, v in value.items()}
    return value


def _outcome(code: str, text: str) -> Resource:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


class Handler(BaseHTTPRequestHandler):
    """The FHIR endpoints the sync uses: transaction, search, and metadata for readiness."""

    protocol_version = "HTTP/1.1"  # keep-alive
    # The status line, headers and body leave in one write (flushed after each request) and
    # without Nagle's delay: written apart, a small reply waits for the client's delayed ACK
    # (40 ms a request on Linux), which would be the sink's cost, not ours.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    store: Store

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Stay quiet: a line a request would cost more than the answer."""

    def _answer(self, status: int, body: Resource) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the base's name
        """POST /fhir: a transaction Bundle."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if urlsplit(self.path).path.rstrip("/") != "/fhir" or body.get("type") != "transaction":
            self._answer(400, _outcome("invalid", "only transactions are taken"))
            return
        self._answer(*self.store.transaction(body))

    def do_GET(self) -> None:  # noqa: N802 - the base's name
        """GET /fhir/metadata, /fhir/<Type>?identifier=..., and /_state (counts)."""
        parts = urlsplit(self.path)
        if parts.path == "/_state":
            self._answer(200, {"counts": self.store.counts()})
            return
        kind = parts.path.removeprefix("/fhir/")
        if kind == "metadata":
            self._answer(200, {"resourceType": "CapabilityStatement", "status": "active",
                               "kind": "instance", "fhirVersion": "4.0.1"})
            return
        params = dict(parse_qsl(parts.query))
        self._answer(200, self.store.search(kind, params.get("identifier", "")))


def main() -> None:
    """Serve on loopback until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.store = Store()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
