"""The operation decorator: routes a view under /api/v1, authenticates, parses, documents."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel

from shared.schemas.common import Problem
from shared.versions import (
    KIOSK_VERSION_HEADER,
    MIN_KIOSK_VERSION_HEADER,
    UNVERSIONED_KIOSK,
    is_older,
    parse_version,
)

from ..app_settings import current as current_settings
from ..errors import ApiProblem, field_problem
from ..openapi import OpenAPIRegistry, Operation
from .auth import authenticate
from .parsing import parse_body, parse_query, read_json

# The blueprint's import name is the package's, as when it was defined in api/__init__.
bp = Blueprint("api", __name__.rpartition(".")[0], url_prefix="/api/v1")

registry = OpenAPIRegistry(
    "Onsite Wellness kiosk API",
    "1.0.0",
    "What a paired kiosk calls on its onsite server. Errors are RFC 9457 problem+json.",
)
registry.extra_models.append(Problem)


_STD_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("Body is not JSON, nests too deeply, or ended before its Content-Length", Problem),
    413: ("Body too large", Problem),
    415: ("Body is not JSON, or has a Content-Encoding other than identity", Problem),
    422: ("Invalid request; each bad field is named", Problem),
    426: ("This kiosk app is older than KIOSK_MIN_VERSION; min_kiosk_version says what to "
          "install. Nothing was stored: keep the data and send it again once updated", Problem),
}


_AUTH_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    401: ("Missing, unknown or revoked device token", Problem),
}


def check_kiosk_version() -> None:
    """Refuse a kiosk app older than the server serves (426), before anything is read or stored.

    A kiosk that sends no version predates versioning and is taken as ``UNVERSIONED_KIOSK``.
    """
    minimum = current_settings().kiosk_min_version
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
    response.headers[MIN_KIOSK_VERSION_HEADER] = current_settings().kiosk_min_version
    return response


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
                g.kiosk = authenticate()
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
