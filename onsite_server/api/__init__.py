"""The kiosk API blueprint (`/api/v1`): JSON in, JSON or problem+json out."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from shared.schemas.common import Problem, control_character_paths
from shared.versions import (
    KIOSK_VERSION_HEADER,
    MIN_KIOSK_VERSION_HEADER,
    UNVERSIONED_KIOSK,
    is_older,
    parse_version,
)

from ..db import get_read_session, get_session
from ..errors import ApiProblem, field_problem, validation_problem
from ..jsonguard import MAX_DEPTH, too_deep
from ..models import Kiosk, Member
from ..openapi import OpenAPIRegistry, Operation
from ..services.members import MemberRefError, resolve_member_ref
from ..services.pairing import hash_secret

bp = Blueprint("api", __name__, url_prefix="/api/v1")
registry = OpenAPIRegistry(
    "Onsite Wellness kiosk API",
    "1.0.0",
    "What a paired kiosk calls on its onsite server. Errors are RFC 9457 problem+json.",
)
registry.extra_models.append(Problem)

_STD_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("Body is not JSON, or nests too deeply", Problem),
    413: ("Body too large", Problem),
    415: ("Body is not JSON", Problem),
    422: ("Invalid request; each bad field is named", Problem),
    426: ("This kiosk app is older than KIOSK_MIN_VERSION; min_kiosk_version says what to "
          "install. Nothing was stored: keep the data and send it again once updated", Problem),
}
_AUTH_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    401: ("Missing, unknown or revoked device token", Problem),
}


def hash_token(token: str) -> str:
    """Return the stored form of a device token (the same hash pairing stored)."""
    return hash_secret(token)


def current_kiosk() -> Kiosk:
    """Return the kiosk authenticated for this request, in the request's session."""
    # Moves the request into its write phase (db.get_session), so changes to the row are
    # written under the write lock.
    get_session()
    kiosk: Kiosk = g.kiosk
    return kiosk


def authenticated_kiosk() -> Kiosk:
    """Return the kiosk as loaded by the token check, for reading its columns only.

    Unlike ``current_kiosk`` it does not start the request's write phase, so a view can finish
    its read-only checks before SQLite's write lock is taken. Never change the row through it.
    """
    kiosk: Kiosk = g.kiosk
    return kiosk


# Built once: constructing a select() per request costs more than running it on SQLite. The
# kiosk's site comes in the same statement: submissions, identify and the catalog all read it,
# and session.get then finds it in the identity map (kiosk.site keeps it there: the map holds
# objects only weakly), which saves them a query each.
_KIOSK_BY_TOKEN = select(Kiosk).options(joinedload(Kiosk.site, innerjoin=True)).where(
    Kiosk.token_hash == bindparam("token_hash"))


def _authenticate() -> Kiosk:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "Unauthorized", "A device token is required (Authorization: Bearer).",
                         headers={"WWW-Authenticate": 'Bearer realm="kiosk"'})
    # A read: on SQLite it runs before the write lock is taken (see db.get_read_session).
    kiosk = get_read_session().scalars(
        _KIOSK_BY_TOKEN, {"token_hash": hash_token(token.strip())}
    ).first()
    if kiosk is None or kiosk.revoked_at is not None:
        raise ApiProblem(
            401, "Unauthorized", "The device token is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="kiosk", error="invalid_token"'},
        )
    return kiosk


def check_kiosk_version() -> None:
    """Refuse a kiosk app older than the server serves (426), before anything is read or stored.

    A kiosk that sends no version predates versioning and is taken as ``UNVERSIONED_KIOSK``.
    """
    minimum = str(current_app.config["KIOSK_MIN_VERSION"])
    sent = request.headers.get(KIOSK_VERSION_HEADER)
    version = UNVERSIONED_KIOSK if sent is None else sent.strip()
    try:
        parse_version(version, KIOSK_VERSION_HEADER)
    except ValueError as exc:
        raise field_problem(KIOSK_VERSION_HEADER, str(exc).partition(": ")[2], 400) from exc
    if is_older(version, minimum):
        raise ApiProblem(
            426, "Kiosk app too old",
            f"This kiosk runs version {version}; this server needs {minimum} or newer. Update "
            "the kiosk app: nothing was stored, so keep the data and send it again then.",
            errors=[{"field": KIOSK_VERSION_HEADER, "message": f"must be {minimum} or newer"}],
            headers={"Upgrade": f"onsite-kiosk/{minimum}"},
            min_kiosk_version=minimum, kiosk_version=version)


@bp.after_request
def _declare_min_version(response: Response) -> Response:
    # Every answer says what the server serves, so a kiosk can warn before it is refused.
    response.headers[MIN_KIOSK_VERSION_HEADER] = str(current_app.config["KIOSK_MIN_VERSION"])
    return response


def member_for_ref(session: Session, kiosk: Kiosk, ref: str) -> Member:
    """Resolve a kiosk's member reference, or raise a 422 problem naming member_ref."""
    try:
        return resolve_member_ref(
            session, str(current_app.config["SECRET_KEY"]), ref, kiosk,
            int(current_app.config["MEMBER_REF_TTL_SECONDS"]),
        )
    except MemberRefError as exc:
        raise field_problem("member_ref", str(exc)) from exc


def read_json() -> Any:
    """Return the parsed JSON body, or raise 415/400 before any work is done on it."""
    if not request.is_json:
        raise ApiProblem(415, "Unsupported Media Type", "Send the body as application/json.",
                         errors=[{"field": "body", "message": "must be application/json"}])
    if too_deep(request.get_data(cache=True)):
        raise field_problem("body", f"nests arrays or objects more than {MAX_DEPTH} levels deep",
                            400)
    data = request.get_json(silent=True)
    if data is None:
        raise field_problem("body", "is not valid JSON", 400)
    return data


def parse_body(model: type[BaseModel]) -> Any:
    """Validate the JSON body against model, or raise a problem naming the bad fields."""
    return parse_json_as(model, read_json())


def parse_json_as(model: type[BaseModel], data: Any) -> Any:
    """Validate parsed JSON against model, or raise a problem naming the bad fields."""
    bad = list(control_character_paths(data))
    if bad:
        raise ApiProblem(422, "Invalid request", f"{bad[0]}: must not contain control characters",
                         errors=[{"field": f, "message": "must not contain control characters"}
                                 for f in bad[:20]])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc


def parse_query(model: type[BaseModel]) -> Any:
    """Validate query-string arguments against model."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise validation_problem(exc) from exc


def operation(
    rule: str,
    method: str,
    *,
    summary: str,
    tag: str,
    request_model: type[BaseModel] | None = None,
    query_model: type[BaseModel] | None = None,
    responses: dict[int, tuple[str, type[BaseModel] | None]],
    auth: bool = True,
    headers: dict[str, str] | None = None,
    raw_body: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route a view under /api/v1 and describe it in the OpenAPI document.

    The view receives ``body`` (validated request model) and/or ``query`` when declared, plus
    path parameters. With ``raw_body`` it gets the parsed JSON instead and validates it itself
    (submissions read what they can of a body the model refuses). It returns a pydantic model,
    ``(model, status)`` or a Response.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        all_responses = dict(responses)
        all_responses.update({k: v for k, v in _STD_ERRORS.items() if k not in responses})
        if auth:
            all_responses.update({k: v for k, v in _AUTH_ERRORS.items() if k not in responses})
        registry.add(Operation(
            path=rule, method=method, operation_id=view.__name__, summary=summary, tags=[tag],
            request_model=request_model, query_model=query_model, responses=all_responses,
            auth=auth, headers=headers or {},
        ))

        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            check_kiosk_version()
            if auth:
                g.kiosk = _authenticate()
            if request_model is not None:
                kwargs["body"] = read_json() if raw_body else parse_body(request_model)
            if query_model is not None:
                kwargs["query"] = parse_query(query_model)
            result = view(**kwargs)
            return to_response(result)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapper, methods=[method])
        return wrapper

    return decorator


def to_response(result: Any) -> Any:
    """Serialise a view's pydantic result (optionally with a status) to JSON."""
    if isinstance(result, Response):
        return result
    status = 200
    if isinstance(result, tuple):
        result, status = result
    if isinstance(result, BaseModel):
        return current_app.response_class(
            result.model_dump_json(), status=status, mimetype="application/json"
        )
    return jsonify(result), status


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

__all__ = ["bookings", "catalog", "heartbeat", "identify", "members", "pairing", "referrals",
           "submissions", "bp", "registry"]
