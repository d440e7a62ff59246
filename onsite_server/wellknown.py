"""Public keys for offline verification: GET /.well-known/jwks.json and the revocation list."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Response, jsonify

from .app_settings import current as current_settings
from .db import get_session
from .services.advocates import revoked_token_ids
from .services.signing import KeyStore
from .services.tickets import revoked_ticket_ids

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")


@bp.get("/jwks.json")
def jwks() -> Response:
    """Publish the current and recent token-signing public keys (JWK, OKP/Ed25519)."""
    ring = KeyStore(Path(current_settings().signing_key_dir)).ring()
    response = jsonify(ring.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/revoked-tokens.json")
def revoked_tokens() -> Response:
    """Publish the ids of revoked, unexpired tokens (no token text, no subjects)."""
    session = get_session()
    grace = timedelta(days=current_settings().ticket_grace_days)
    revoked = revoked_token_ids(session) | revoked_ticket_ids(session, grace)
    return jsonify({"revoked": sorted(revoked)})


@bp.get("/smart-client-jwks.json")
def smart_client_jwks() -> Response | tuple[Response, int]:
    """Publish the public key our SMART client signs its assertions with (for central)."""
    from .central import SmartAuth

    settings = current_settings()
    path, client_id = settings.central_private_key_path, settings.central_client_id
    if not path or not client_id:
        return jsonify({"keys": []}), 404
    auth = SmartAuth(client_id=client_id, token_url=None,
                     private_key_pem=Path(path).read_bytes(), key_id=settings.central_key_id)
    response = jsonify(auth.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
