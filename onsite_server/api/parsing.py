"""Reading a request: the JSON body and the query string, checked before any work."""

from __future__ import annotations

from typing import Any

from flask import g, request
from pydantic import BaseModel, ValidationError

from shared.schemas.common import control_character_paths

from ..errors import ApiProblem, field_problem, validation_problem
from ..jsonguard import MAX_DEPTH, REPEATED, loads, repeated_paths, too_deep


def read_json() -> Any:
    """Return the parsed JSON body, or raise 415/400 before any work is done on it."""
    if not request.is_json:
        raise ApiProblem(415, "Unsupported Media Type", "Send the body as application/json.",
                         errors=[{"field": "body", "message": "must be application/json"}])
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        # Nothing decodes a body here: a gzip body was read as broken JSON, and a body a proxy
        # labelled "br" but sent plain was taken (RFC 7694: 415, and say what is accepted).
        raise ApiProblem(415, "Unsupported Media Type",
                         "Send the body without a content coding (Content-Encoding: identity).",
                         errors=[{"field": "Content-Encoding", "message": "must be identity"}],
                         headers={"Accept-Encoding": "identity"})
    body = request.get_data(cache=True)
    if request.content_length is not None and len(body) < request.content_length:
        # The connection ended early (a proxy or network cut it): what came is not the body
        # the kiosk sent, even where it happens to parse.
        raise field_problem("body", f"ended after {len(body)} of the {request.content_length} "
                                    "bytes its Content-Length announced", 400)
    if too_deep(body):
        raise field_problem("body", f"nests arrays or objects more than {MAX_DEPTH} levels deep",
                            400)
    try:
        data, g.json_keys_repeated = loads(body)
    except ValueError:
        data = None
    if data is None:
        raise field_problem("body", "is not valid JSON", 400)
    return data


def keys_repeated() -> bool:
    """Tell whether an object in this request's JSON body named a key more than once."""
    return bool(g.get("json_keys_repeated"))


def repeated_problem(data: Any, prefix: str = "") -> ApiProblem | None:
    """A 422 naming each key an object of ``data`` names twice, or None when none does."""
    bad = list(repeated_paths(data, prefix))
    if not bad:
        return None
    return ApiProblem(422, "Invalid request", f"{bad[0]}: {REPEATED}",
                      errors=[{"field": f, "message": REPEATED} for f in bad[:20]])


def parse_body(model: type[BaseModel]) -> Any:
    """Validate the JSON body against model, or raise a problem naming the bad fields."""
    return parse_json_as(model, read_json())


def parse_json_as(model: type[BaseModel], data: Any) -> Any:
    """Validate parsed JSON against model, or raise a problem naming the bad fields."""
    repeated = repeated_problem(data) if keys_repeated() else None
    if repeated is not None:
        raise repeated
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
