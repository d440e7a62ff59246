"""The FHIR R4 REST endpoints under /fhir: transaction, read, search, create and update."""

from __future__ import annotations

import hmac
import json
import socket
import time
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import get_smart, get_store
from .smart import ALGORITHMS, OAuthError, scope_allows
from .spec import SUPPORTED_TYPES
from .store import FhirError, Resource, now_iso
from .validation import model, supported

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
_PUBLIC = ("fhir.metadata", "fhir.smart_configuration", "fhir.token")

FHIR_JSON = "application/fhir+json; charset=utf-8"
_TYPES_SERVED = SUPPORTED_TYPES
# Where the next page starts: a stateless offset, as the next link carries it.
PAGE_OFFSET = "_getpagesoffset"


def fhir_response(body: Resource, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """Return a FHIR JSON response."""
    return Response(json.dumps(body), status=status, mimetype=None, content_type=FHIR_JSON,
                    headers=headers)


def check_bearer(*, smart: bool = True) -> Response | None:
    """Answer 401 unless the request carries the static token or (with ``smart``) a SMART one.

    Open when no static token is configured and (with ``smart``) no SMART client registered.
    """
    expected = current_app.config.get("TOKEN")
    registry = get_smart(current_app) if smart else None
    if not expected and not (registry and registry.enabled):
        return None
    sent = request.headers.get("Authorization", "")
    given = sent[7:] if sent[:7].lower() == "bearer " else ""
    if given and expected and hmac.compare_digest(given.encode(), str(expected).encode()):
        return None
    if given and registry is not None and registry.valid(given):
        g.smart_scope = registry.scope_of(given)
        return None
    error = FhirError(401, "login", "a bearer token is required")
    return fhir_response(error.outcome(), 401, {"WWW-Authenticate": 'Bearer realm="central"'})


@bp.before_request
def _gate() -> Response | None:
    """Apply the control mode, then the bearer token (the capability statement is public)."""
    control = get_store(current_app).control
    if control.mode == "down":
        return fhir_response(FhirError(503, "transient", "central is down (emulated)")
                             .outcome(), 503, {"Retry-After": "1"})
    if control.mode == "error":
        return fhir_response(FhirError(500, "exception", "central failed (emulated)")
                             .outcome(), 500)
    if control.mode == "slow":
        time.sleep(control.delay_seconds)
    if request.endpoint in _PUBLIC:
        return None
    return check_bearer()


@bp.errorhandler(FhirError)
def _refused(error: FhirError) -> Response:
    return fhir_response(error.outcome(), error.status)


def _body() -> Any:
    try:
        return json.loads(request.get_data(as_text=True))
    except ValueError as exc:
        raise FhirError(400, "structure", f"the body is not JSON: {exc}") from exc


def _check_type(kind: str) -> None:
    try:
        model(kind)
    except (ImportError, AttributeError) as exc:
        raise FhirError(404, "not-supported", f"{kind!r} is not an R4 resource type") from exc
    if not supported(kind):
        raise FhirError(404, "not-supported", f"this server does not support {kind} (see its "
                        "CapabilityStatement)")


def _after_write(answer: Response) -> Response:
    """Drop the connection after the commit when told to, as a lost reply would."""
    if get_store(current_app).control.mode != "drop_after_commit":
        return answer
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        # The test client has no connection to drop; say so rather than pretend.
        return fhir_response(FhirError(502, "transient", "committed; the reply would have "
                                       "been dropped (no socket here)").outcome(), 502)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client went first: the reply is lost either way
    # Writing to the shut socket fails with a ConnectionError, which the server treats as a
    # dropped connection: the client sees the connection close with no status line.
    return answer


@bp.get("/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement: transaction, read, search by identifier, create, update."""
    interactions = [{"code": c} for c in ("read", "search-type", "create", "update")]
    resources = [{"type": kind, "interaction": interactions, "versioning": "versioned-update",
                  "conditionalCreate": True, "conditionalUpdate": True,
                  "searchParam": [{"name": "identifier", "type": "token"},
                                  {"name": "_id", "type": "token"}]}
                 for kind in _TYPES_SERVED]
    security: Resource = {"cors": False, "description": (
        "Static bearer token or SMART Backend Services (client credentials, ES384/RS384); "
        "open when neither is configured"),
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"}]}],
        "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                              "oauth-uris",
                       "extension": [{"url": "token", "valueUri": _token_url()}]}]}
    body = {
        "resourceType": "CapabilityStatement", "status": "active", "date": now_iso()[:10],
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
        "software": {"name": "Onsite Wellness central emulator"},
        "implementation": {"description": "Stand-in for the central advocate system",
                           "url": request.url_root.rstrip("/") + "/fhir"},
        "rest": [{"mode": "server", "security": security, "resource": resources,
                  "interaction": [{"code": "transaction"}]}],
    }
    return fhir_response(body)


@bp.post("")
@bp.post("/")
def transaction() -> Response:
    """Apply a transaction Bundle all-or-nothing and answer the transaction-response."""
    bundle = _body()
    for entry in bundle.get("entry", []) if isinstance(bundle, dict) else []:
        part = entry.get("request") if isinstance(entry, dict) else None
        if isinstance(part, dict):
            kind = str(part.get("url", "")).split("?")[0].split("/")[0]
            _require_scope(kind, str(part.get("method", "")), "?" in str(part.get("url", "")))
    answer = get_store(current_app).transaction(bundle)
    return _after_write(fhir_response(answer))


def _require_scope(kind: str, method: str, conditional: bool = False) -> None:
    """Refuse (403) what a SMART token's scope does not cover; other callers are not scoped."""
    scope = g.get("smart_scope")
    if scope is None:
        return
    needed = {"GET": "r", "POST": "c", "PUT": "cu" if conditional else "u",
              "PATCH": "u", "DELETE": "d"}.get(method.upper(), "c")
    for permission in needed:
        if not scope_allows(scope, kind, permission):
            raise FhirError(403, "forbidden", f"the access token's scope does not allow "
                            f"'{permission}' on {kind} (scope: {scope})")


def _page_size() -> int:
    """Return the page size a search asked for (``_count``), within the server's limit."""
    limit = int(current_app.config["SEARCH_MAX_PAGE_SIZE"])
    asked = request.args.get("_count")
    if asked is None:
        return min(int(current_app.config["SEARCH_PAGE_SIZE"]), limit)
    if not asked.isdigit():
        raise FhirError(400, "invalid", f"_count must be a whole number, not {asked!r}",
                        "_count")
    # A real server caps the page whatever the client asks: _count=1000 gets the limit.
    return min(int(asked), limit)


def _offset() -> int:
    asked = request.args.get(PAGE_OFFSET, "0")
    if not asked.isdigit():
        raise FhirError(400, "invalid", f"{PAGE_OFFSET} must be a whole number, not {asked!r}",
                        PAGE_OFFSET)
    return int(asked)


def _searchset(kind: str) -> Response:
    """Answer one page of a search, with ``next`` (and ``previous``) links to the others."""
    params = [(k, v) for k, v in request.args.items(multi=True) if k != PAGE_OFFSET]
    size, offset = _page_size(), _offset()
    matches, ignored = get_store(current_app).search(kind, params)
    base = request.url_root.rstrip("/") + "/fhir"
    page = matches[offset:offset + size]
    entries: list[Resource] = [{"fullUrl": f"{base}/{kind}/{r['id']}", "resource": r,
                                "search": {"mode": "match"}} for r in page]
    if ignored:
        entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [{
            "severity": "warning", "code": "not-supported",
            "diagnostics": f"ignored search parameters: {', '.join(ignored)}"}]},
            "search": {"mode": "outcome"}})

    def url(at: int | None) -> str:
        pairs = [(k, v) for k, v in params if k != "_count"] + [("_count", str(size))]
        if at:
            pairs.append((PAGE_OFFSET, str(at)))
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
        return f"{base}/{kind}?{query}"

    links = [{"relation": "self", "url": url(offset)}]
    if size and offset + size < len(matches):
        links.append({"relation": "next", "url": url(offset + size)})
    if size and offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - size))})
    return fhir_response({"resourceType": "Bundle", "type": "searchset",
                          "total": len(matches), "link": links, "entry": entries})


@bp.get("/<kind>")
def search(kind: str) -> Response:
    """Search one resource type (identifier, _id, references), one page at a time."""
    _check_type(kind)
    if g.get("smart_scope") is not None and not scope_allows(g.smart_scope, kind, "s"):
        raise FhirError(403, "forbidden", f"the access token's scope does not allow 's' on "
                        f"{kind}")
    return _searchset(kind)


@bp.get("/<kind>/<rid>")
def read(kind: str, rid: str) -> Response:
    """Return one resource by id."""
    _check_type(kind)
    _require_scope(kind, "GET")
    found = get_store(current_app).read(kind, rid)
    if found is None:
        raise FhirError(404, "not-found", f"{kind}/{rid} is not known")
    return fhir_response(found, headers={"ETag": f'W/"{found["meta"]["versionId"]}"'})


def _single(kind: str, request_part: Resource) -> Response:
    """Run one create or update as a one-entry transaction, answering like FHIR REST does."""
    _require_scope(kind, str(request_part["method"]), "?" in str(request_part["url"]))
    resource = _body()
    if not isinstance(resource, dict) or resource.get("resourceType") != kind:
        raise FhirError(400, "invalid", f"the body is not a {kind}")
    store = get_store(current_app)
    answer = store.transaction({"resourceType": "Bundle", "type": "transaction",
                                "entry": [{"resource": resource, "request": request_part}]})
    outcome = answer["entry"][0]["response"]
    _, rid, _, version = outcome["location"].split("/")
    stored = store.read(kind, rid) or {}
    status = int(outcome["status"].split()[0])
    return _after_write(fhir_response(stored, status, {
        "Location": f"{request.url_root.rstrip('/')}/fhir/{outcome['location']}",
        "ETag": f'W/"{version}"'}))


@bp.post("/<kind>")
def create(kind: str) -> Response:
    """Create a resource (conditionally with the If-None-Exist header)."""
    _check_type(kind)
    part: Resource = {"method": "POST", "url": kind}
    if request.headers.get("If-None-Exist"):
        part["ifNoneExist"] = request.headers["If-None-Exist"]
    return _single(kind, part)


@bp.put("/<kind>")
def conditional_update(kind: str) -> Response:
    """Update the resource a search matches, or create it (``PUT Type?identifier=...``)."""
    _check_type(kind)
    query = request.query_string.decode()
    if not query:
        raise FhirError(400, "invalid", "PUT on a type needs a search condition")
    return _single(kind, {"method": "PUT", "url": f"{kind}?{query}"})


@bp.put("/<kind>/<rid>")
def update(kind: str, rid: str) -> Response:
    """Create or replace a resource at its id; with ``If-Match``, only onto that version.

    This is also how central's own users edit (an advocate moves a Task on, takes it, adds a
    note): the version goes up, and a writer holding the older one gets 412.
    """
    _check_type(kind)
    part: Resource = {"method": "PUT", "url": f"{kind}/{rid}"}
    if request.headers.get("If-Match"):
        part["ifMatch"] = request.headers["If-Match"]
    return _single(kind, part)


def _token_url() -> str:
    # Under the FHIR base, where the onsite server looks by default (CENTRAL_URL + /auth/token).
    return request.url_root.rstrip("/") + "/fhir/auth/token"


@bp.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """Return SMART's discovery document: where and how to get a backend-services token."""
    return jsonify({
        "token_endpoint": _token_url(),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": ["system/*.*", "system/*.rs", "system/*.cruds"],
        "capabilities": ["client-confidential-asymmetric"],
    })


@bp.post("/auth/token")
def token() -> tuple[Response, int]:
    """Issue an access token for a SMART Backend Services client-credentials request."""
    try:
        answer = get_smart(current_app).issue(request.form.to_dict(), _token_url())
    except OAuthError as exc:
        return jsonify(exc.body()), exc.status
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response, 200
