"""Public keys for offline verification: GET /.well-known/jwks.json and the revocation list."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify

from .db import get_session
from .services.advocates import revoked_token_ids
from .services.signing import KeyStore
from .services.tickets import revoked_ticket_ids

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")


@bp.get("/jwks.json")
def jwks() -> Response:
    """Publish the current and recent token-signing public keys (JWK, OKP/Ed25519)."""
    ring = KeyStore(Path(current_app.config["SIGNING_KEY_DIR"])).ring()
    response = jsonify(ring.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/revoked-tokens.json")
def revoked_tokens() -> Response:
    """Publish the ids of revoked, unexpired tokens (no token text, no subjects)."""
    session = get_session()
    grace = timedelta(days=int(current_app.config["TICKET_GRACE_DAYS"]))
    revoked = revoked_token_ids(session) | revoked_ticket_ids(session, grace)
    return jsonify({"revoked": sorted(revoked)})


@bp.get("/smart-client-jwks.json")
def smart_client_jwks() -> Response | tuple[Response, int]:
    """Publish the public key our SMART client signs its assertions with (for central)."""
    from .central import SmartAuth

    path = current_app.config.get("CENTRAL_PRIVATE_KEY_PATH")
    if not path or not current_app.config.get("CENTRAL_CLIENT_ID"):
        return jsonify({"keys": []}), 404
    auth = SmartAuth(client_id=str(current_app.config["CENTRAL_CLIENT_ID"]), token_url=None,
                     private_key_pem=Path(str(path)).read_bytes(),
                     key_id=current_app.config.get("CENTRAL_KEY_ID"))
    response = jsonify(auth.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
