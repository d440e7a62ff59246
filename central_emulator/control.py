"""Test and demo controls: failure modes, counts, keys by hand, and a reset.

Not FHIR: these exist so tests can make central fail and check what it holds. When a bearer
token is configured they need it, like the FHIR endpoints.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from . import directory, get_site_keys, get_smart, get_store
from .fhir_api import check_bearer
from .store import Control, FhirError

bp = Blueprint("control", __name__)


@bp.before_request
def _auth() -> Response | None:
    """Ask for the static bearer token when one is configured (SMART tokens are for FHIR)."""
    return check_bearer(smart=False)


@bp.errorhandler(FhirError)
def _refused(error: FhirError) -> tuple[Response, int]:
    return jsonify({"error": str(error)}), error.status


def _json() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise FhirError(400, "invalid", "the body must be a JSON object")
    return body


def _mode() -> dict[str, Any]:
    control = get_store(current_app).control
    return {"mode": control.mode, "delay_seconds": control.delay_seconds}


@bp.get("/_control")
def show_control() -> Response:
    """Return the current mode and delay."""
    return jsonify(_mode())


@bp.post("/_control")
def set_control() -> Response:
    """Set the mode (normal, down, slow, error, drop_after_commit) and the slow delay."""
    body = _json()
    mode = body.get("mode", "normal")
    if mode not in Control.MODES:
        raise FhirError(400, "invalid", f"mode must be one of {', '.join(Control.MODES)}")
    delay = body.get("delay_seconds", 0)
    limit = float(current_app.config["MAX_DELAY_SECONDS"])
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= limit:
        raise FhirError(400, "invalid", f"delay_seconds must be a number from 0 to {limit:g}")
    store = get_store(current_app)
    with store.lock:
        store.control = Control(mode=mode, delay_seconds=float(delay))
    return jsonify(_mode())


@bp.get("/_state")
def state() -> Response:
    """Return how many resources of each type are held, and how many keys were received."""
    store = get_store(current_app)
    ring = store.verify_ring()
    return jsonify({"counts": store.counts(), "keys": len(ring.keys),
                    "revoked": len(ring.revoked), "retired_keys": sorted(ring.retired),
                    **_mode()})


@bp.post("/_keys")
def add_keys() -> Response:
    """Trust a JWK Set (as KeyRing.jwks() makes, retirements honoured), optionally with
    "revoked" token ids."""
    body = _json()
    revoked = body.get("revoked", [])
    if not isinstance(revoked, list):
        raise FhirError(400, "invalid", "revoked must be a list of token ids")
    count = get_store(current_app).add_keys(body, [str(r) for r in revoked])
    return jsonify({"added": count, "keys": len(get_store(current_app).verify_ring().keys)})


@bp.post("/_reset")
def reset() -> Response:
    """Forget everything received and reload the demo directory (when configured)."""
    store = get_store(current_app)
    with store.lock:
        store.reset()
        if current_app.config["DEMO_DIRECTORY"]:
            directory.load(store)
    return jsonify({"counts": store.counts(), **_mode()})


@bp.post("/_clients")
def add_client() -> Response:
    """Register a SMART Backend Services client: {"client_id": ..., "jwks": {"keys": [...]}}."""
    body = _json()
    try:
        count = get_smart(current_app).register(str(body.get("client_id") or ""),
                                                body.get("jwks"))
    except ValueError as exc:
        raise FhirError(400, "invalid", str(exc)) from exc
    return jsonify({"client_id": body["client_id"], "keys": count})


@bp.post("/_sites")
def add_site() -> Response:
    """Register where a site publishes its token keys: {"site": ..., "jwks_url": ...}."""
    body = _json()
    try:
        get_site_keys(current_app).register(str(body.get("site") or ""),
                                            str(body.get("jwks_url") or ""))
    except ValueError as exc:
        raise FhirError(400, "invalid", str(exc)) from exc
    return jsonify({"site": body["site"], "jwks_url": body["jwks_url"]})
