"""What central's answers mean: the error a failed request raises, what a transaction's
answer must be before a row counts as sent, how long central asked us to wait, and why a
request got no answer at all, in words an admin can act on."""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3

PERMANENT = frozenset({400, 409, 412, 422})


class CentralError(Exception):
    """A request to central that failed; ``retryable`` says whether to try again later.

    ``credentials_refused`` marks central's ``invalid_client``: our client id or key is not
    accepted, which no retry mends; the sync stops its cycle and raises an alert instead of
    asking again and again. ``retry_after`` is what central's Retry-After asked for, in
    seconds from now (None: it did not say).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True,
                 body: Any = None, credentials_refused: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.body = body
        self.credentials_refused = credentials_refused
        self.retry_after = retry_after


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delay-seconds or an HTTP date;
    RFC 9110 10.2.3), or None when there is none or it cannot be read."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    moment = time.time() if now is None else now
    return max(0.0, when.timestamp() - moment)


def refusal(status: int, body: Any) -> str:
    """Return central's own words for a refusal (an OperationOutcome's first issue), as
    ``: ...`` to follow the status, or an empty string."""
    issues = body.get("issue") if isinstance(body, dict) else None
    if not isinstance(issues, list) or not issues or not isinstance(issues[0], dict):
        if status == 401:
            return ": central does not accept our token (expired or revoked?)"
        return ""
    issue, details = issues[0], issues[0].get("details")
    words = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict)
                                         else None)
    return f": {str(words)[:300]}" if words else ""


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those behind it (causes, contexts, urllib3's reasons), nearest
    first."""
    found: list[BaseException] = []
    pending: list[Any] = [exc]
    while pending and len(found) < 12:
        item = pending.pop(0)
        if not isinstance(item, BaseException) or item in found:
            continue
        found.append(item)
        pending += [getattr(item, "reason", None), item.__cause__, item.__context__,
                    *(a for a in item.args if isinstance(a, BaseException))]
    return found


def no_answer(exc: BaseException, read_timeout: float) -> str:
    """Say why a request got no answer, naming a TLS certificate's fault or a timeout."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return (f"central's TLS certificate was refused ({item.verify_message}): the "
                    "request was not sent")
    for item in chain:
        if isinstance(item, ssl.SSLError):
            return f"the TLS connection to central failed ({item.reason or item})"
    for item in chain:
        if isinstance(item, (requests.exceptions.ReadTimeout,
                             urllib3.exceptions.ReadTimeoutError)):
            return f"no answer within the read timeout ({read_timeout:g} s)"
        if isinstance(item, (requests.exceptions.ConnectTimeout,
                             urllib3.exceptions.ConnectTimeoutError)):
            return "no connection within the connect timeout"
    for item in chain:
        if isinstance(item, OSError) and item.strerror:
            return f"{type(exc).__name__} ({item.strerror})"
    return f"{type(exc).__name__}: no complete answer"


def confirm_transaction(url: str, bundle: Mapping[str, Any], answer: Any) -> None:
    """Raise CentralError unless ``answer`` is the transaction-response to ``bundle``.

    FHIR answers a transaction with one entry per request entry, in order, each with a
    ``response.status``; anything else leaves unknown whether central kept the Bundle, so it
    is sent again (its entries are idempotent at central). An entry that says it failed
    raises with that status (a 412 on an If-Match entry is a lost race).
    """
    sent = bundle.get("entry") or []
    if not isinstance(answer, dict) or answer.get("resourceType") != "Bundle" \
            or answer.get("type") != "transaction-response":
        raise CentralError(f"POST {url}: the answer is not a transaction-response (it is "
                           f"{_described(answer)}): whether central kept the bundle is "
                           "unknown, so it is sent again", body=answer)
    replies = answer.get("entry") or []
    if not isinstance(replies, list) or len(replies) != len(sent):
        count = len(replies) if isinstance(replies, list) else "no list of"
        raise CentralError(f"POST {url} answered {count} entries for the {len(sent)} sent: "
                           "whether central kept the bundle is unknown, so it is sent again",
                           body=answer)
    for index, reply in enumerate(replies):
        response = reply.get("response") if isinstance(reply, dict) else None
        status = str(response.get("status", "")) if isinstance(response, dict) else ""
        code = int(status[:3]) if status[:3].isdigit() else None
        if code is None or not 200 <= code < 300:
            raise CentralError(f"POST {url}: entry {index} of the transaction-response says "
                               f"{status or 'nothing'!r}, not a success",
                               status=code if code is not None and code >= 300 else None,
                               retryable=code not in PERMANENT, body=answer)


def check_page(url: str, page: Any) -> dict[str, Any]:
    """Return a search's answer when it is a Bundle whose entries are objects; raise
    CentralError for anything else (a list, a string), so central's mistake fails the pull
    instead of the worker."""
    entries = page.get("entry", []) if isinstance(page, dict) else None
    if not isinstance(page, dict) or page.get("resourceType") != "Bundle" \
            or not isinstance(entries, list) \
            or not all(isinstance(e, dict) for e in entries):
        raise CentralError(f"GET {url}: the answer is not a Bundle of resources (it is "
                           f"{_described(page)}, its entries "
                           f"{'objects' if isinstance(entries, list) else 'not a list'})",
                           body=page)
    return page


def _described(answer: Any) -> str:
    """Name what an answer is, for a message (``resourceType OperationOutcome``)."""
    if not isinstance(answer, dict):
        return f"a JSON {type(answer).__name__}"
    kind = answer.get("resourceType")
    if kind is None:
        return "a JSON object with no resourceType"
    if kind == "Bundle":
        return f"a Bundle of type {str(answer.get('type'))[:40]!r}"
    return f"resourceType {str(kind)[:40]!r}"
