"""What services raise, and the problem-document shape, without any web framework.

Services refuse with ``ServiceError`` (a kind, a title and the bad fields); ``errors.py``
maps each kind to its HTTP status in one place. Per-item answers inside a 200 (submission
batches) carry the same RFC 9457 document, built here by ``problem_document``.

A field's message is written with ``N_``: it reads as plain English text (the JSON API's
problem documents stay English and unchanged), and it keeps its msgid and arguments apart so
that the dashboard shows it in the page's language (``dashboard.i18n.refusal``);
``scripts/dashboard-i18n.sh`` extracts ``N_`` from the services.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

Kind = Literal["refused", "invalid", "conflict", "not_found", "rate_limited", "unavailable"]

# The HTTP status of each kind; errors.py applies it, and item answers carry it. "refused" is
# a well-formed request the server cannot honour as asked (a pairing code unknown or used).
STATUS: dict[str, int] = {"refused": 400, "invalid": 422, "conflict": 409, "not_found": 404,
                          "rate_limited": 429, "unavailable": 503}


class Msg(str):
    """English text that remembers its gettext msgid and arguments, to be translated later."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Msg:
        """Format msgid with params (``%(name)s`` style) as the English text."""
        text = super().__new__(cls, msgid % params if params else msgid)
        text.msgid = msgid
        text.params = params
        return text


def N_(msgid: str, **params: Any) -> Msg:  # noqa: N802 (gettext's name for "mark only")
    """Mark a refusal message for extraction; its value is the English text."""
    return Msg(msgid, **params)


class ServiceError(Exception):
    """A request a service refuses, naming each bad field.

    ``reason`` is a stable code for the callers that act on why (the check-in desk's page,
    the audit log); it defaults to the kind. ``retry_after`` (seconds) is set when the same
    request may succeed later: the API answers it as a Retry-After header.
    """

    def __init__(self, kind: Kind, title: str, errors: list[dict[str, str]],
                 detail: str | None = None, *, reason: str | None = None,
                 retry_after: int | None = None) -> None:
        self.kind = kind
        self.title = title
        self.errors = errors
        self.detail = detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        self.reason = reason or kind
        self.retry_after = retry_after
        super().__init__(self.detail)

    @property
    def status(self) -> int:
        """The HTTP status this kind of refusal is answered with."""
        return STATUS[self.kind]


def required_text(value: str, field: str) -> str:
    """Return value stripped, or refuse a blank one naming the field ("is required")."""
    text = value.strip()
    if not text:
        raise ServiceError("invalid", "Invalid request",
                           [{"field": field, "message": N_("is required")}])
    return text


class TooManyAttempts(ServiceError):
    """Too many attempts in a window (sign-in, pairing): answered 429 with Retry-After."""

    def __init__(self, retry_after: int, detail: str, *, reason: str = "rate_limited") -> None:
        super().__init__("rate_limited", "Too Many Requests", [], detail, reason=reason,
                         retry_after=retry_after)


def problem_document(status: int, title: str, detail: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     type_: str = "about:blank", **extra: Any) -> dict[str, Any]:
    """Return an RFC 9457 problem document with the bad fields listed."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Turn pydantic errors into [{field, message}] with dotted field paths."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        out.append({"field": loc, "message": err.get("msg", "is invalid")})
    return out
