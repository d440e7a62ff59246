"""RFC 9457 problem details for the JSON API, and HTML error pages for the browser areas."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, json, render_template, request
from flask.globals import request_ctx
from jinja2 import TemplateError
from markupsafe import escape
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError

from .db.engines import DB_UNAVAILABLE, database_problem, rollback_quietly
from .services.errors import ServiceError, problem_document, validation_errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """Raise from a view or service to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.type = type_
        self.headers = headers or {}
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """Return the problem document body."""
        return problem_document(self.status, self.title, self.detail, self.errors, self.type,
                                **self.extra)

    @classmethod
    def from_service(cls, exc: ServiceError) -> ApiProblem:
        """Map a service's refusal to its HTTP answer (the one place that does)."""
        headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return cls(exc.status, exc.title, exc.detail, errors=exc.errors, headers=headers)


def field_problem(field: str, message: str, status: int = 422) -> ApiProblem:
    """Build a problem naming one bad field."""
    return ApiProblem(
        status,
        "Invalid request",
        f"{field}: {message}",
        errors=[{"field": field, "message": message}],
    )


def validation_problem(exc: ValidationError) -> ApiProblem:
    """Build a 422 problem from a pydantic ValidationError."""
    errors = validation_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return ApiProblem(422, "Invalid request", detail, errors=errors)


def problem_response(problem: ApiProblem) -> Response:
    """Serialise a problem as application/problem+json."""
    resp = Response(json.dumps(problem.to_dict()), status=problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        resp.headers[name] = value
    return resp


def wants_json() -> bool:
    """Tell whether this request should be answered in JSON (API paths, JSON callers)."""
    if request.path.startswith("/api/") or request.path == "/healthz":
        return True
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", PROBLEM_JSON])
    return best in ("application/json", PROBLEM_JSON)


_wants_json = wants_json

# Used only when the error page itself cannot render (a broken template, no database).
_FALLBACK_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{code} {title}</title></head><body><main><h1>{code} {title}</h1><p>{detail}</p>
<p><a href="/">Back to start</a></p></main></body></html>"""


def _bind_links_without_host() -> None:
    """Let a request refused before routing (an untrusted Host) still build the page's links.

    Flask gives such a request no URL adapter, so every ``url_for`` in the layout would fail.
    The pages link by path only, so an adapter bound to a fixed name serves them, and the
    refused Host header is never read.
    """
    if request_ctx.url_adapter is None:
        request_ctx.url_adapter = current_app.url_map.bind(
            "localhost", script_name=request.root_path or None, url_scheme=request.scheme)


def _html_page(status: int, title: str, detail: str | None,
               errors: list[dict[str, str]] | None, extra: dict[str, Any] | None = None) -> str:
    try:
        _bind_links_without_host()
        return render_template([f"errors/{status}.html", "errors/error.html"], code=status,
                               title=title, detail=detail or "", errors=errors or [],
                               **(extra or {}))
    except (TemplateError, BuildError, SQLAlchemyError, RuntimeError, KeyError,
            AttributeError) as exc:
        log.error("error page %s did not render: %s", status, type(exc).__name__)
        return _FALLBACK_HTML.format(code=status, title=escape(title),
                                     detail=escape(detail or ""))


def error_response(status: int, title: str, detail: str | None, *,
                   errors: list[dict[str, str]] | None = None) -> Response:
    """Answer an error as problem+json or as an HTML page, by what the client accepts."""
    return _render(status, title, detail, errors=errors)


def _render(
    status: int, title: str, detail: str | None, headers: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None,
) -> Response:
    if _wants_json():
        return problem_response(ApiProblem(status, title, detail, headers=headers,
                                           errors=errors, **(extra or {})))
    html = _html_page(status, title, detail, errors, extra)
    return Response(html, status=status, mimetype="text/html", headers=headers)


# Why the database refused, in words, and how soon a retry can help: a lock or a busy pool
# clears in seconds; a full disk or a read-only database needs someone to act first.
_CAUSES: dict[str, tuple[str, str]] = {
    "busy": ("The database is busy; retry shortly.", "2"),
    "full": ("The server's disk (or the database's size limit) is full: nothing can be saved "
             "until space is freed. Nothing was changed; tell the administrator.", "60"),
    "read-only": ("The database is read-only (a read-only file or mount, or a standby "
                  "server): nothing can be saved until it takes writes again. Nothing was "
                  "changed; tell the administrator.", "60"),
    "unreachable": ("The database cannot be reached. Nothing was changed; retry shortly.",
                    "5"),
    "refuses writes": ("The database refused the write. Nothing was changed; retry shortly, "
                       "and tell the administrator if it keeps happening.", "10"),
}


def database_unavailable(exc: Exception) -> Response:
    """Answer 503 naming why the database refused (busy, full, read-only, unreachable).

    Nothing was committed, so the client may safely retry with the same idempotency key. Only
    the error's type is logged: its text can carry SQL parameters, that is, health data.
    """
    cause = database_problem(exc)
    detail, retry_after = _CAUSES.get(cause, _CAUSES["refuses writes"])
    # A full disk or a read-only database will not clear by itself: say so loudly.
    level = logging.ERROR if cause in ("full", "read-only") else logging.WARNING
    log.log(level, "database unavailable (%s): %s", cause, type(exc).__name__)
    return _render(503, "Service Unavailable", detail, {"Retry-After": retry_after},
                   extra={"cause": cause})


# The bodies Werkzeug parses into request.form. Any other body (the API's JSON) is left alone:
# reading request.form there would open the request's stream here, before the view.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def refuse_nul_characters() -> Response | None:
    """Refuse a query or form field holding a NUL character with 422, naming the field."""
    # PostgreSQL cannot store a NUL character in text: a query or form field holding one
    # reached the database and answered 500 there (the API's fields refuse control
    # characters themselves). No person types one; refused here for every page at once.
    sources = [request.args]
    if request.mimetype in _FORM_TYPES:
        sources.append(request.form)
    for source in sources:
        for field, value in source.items(multi=True):
            if "\x00" in field or "\x00" in value:
                name = field.replace("\x00", "")
                message = "must not contain a NUL character"
                return error_response(422, "Invalid request", f"{name}: {message}",
                                      errors=[{"field": name, "message": message}])
    return None


def init_app(app: Flask) -> None:
    """Register the error handlers: problem+json for the API, HTML pages otherwise."""

    @app.errorhandler(ApiProblem)
    def _api_problem(exc: ApiProblem) -> Response:
        return problem_response(exc)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        return problem_response(ApiProblem.from_service(exc))

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return problem_response(validation_problem(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        headers = dict(exc.get_headers())
        headers.pop("Content-Type", None)
        return _render(exc.code or 500, exc.name, exc.description, headers)

    def _db_busy(exc: Exception) -> Response:
        _rollback()
        return database_unavailable(exc)

    for unavailable in DB_UNAVAILABLE:
        app.register_error_handler(unavailable, _db_busy)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        _rollback()
        # The type and the traceback's frames, not str(exc): SQL errors quote their parameters.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path,
                  exc_info=not isinstance(exc, SQLAlchemyError))
        return _render(500, "Internal Server Error", "An unexpected error occurred.")


def _rollback() -> None:
    session = g.get("db_session")
    if session is not None:
        rollback_quietly(session)
