"""The kiosk API blueprint (`/api/v1`): JSON in, JSON or problem+json out.

``decorator`` holds the blueprint, the OpenAPI registry and ``operation`` (route, authenticate,
parse, document); ``auth`` the device token and member references; ``parsing`` the request
body and query. The package re-exports their names, and each area module registers its
operations on ``bp`` when imported.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from .auth import (
    authenticated_kiosk,
    current_kiosk,
    hash_token,
    member_for_ref,
    member_keys_for_ref,
)
from .decorator import bp, operation, registry, to_response
from .parsing import parse_body, parse_json_as, parse_query, read_json


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI 3.1 document of the kiosk API."""
    return jsonify(registry.document(server_url=request.script_root + "/api/v1"))


# Each area registers its operations on bp when imported; the order is the document's order.
from . import (  # noqa: E402
    bookings,
    catalog,
    heartbeat,
    identify,
    members,
    pairing,
    referrals,
    submissions,
)

__all__ = ["authenticated_kiosk", "bookings", "bp", "catalog", "current_kiosk", "hash_token",
           "heartbeat", "identify", "member_for_ref", "member_keys_for_ref", "members", "operation",
           "pairing", "parse_body", "parse_json_as", "parse_query", "read_json", "referrals",
           "registry", "submissions", "to_response"]
