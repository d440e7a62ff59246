"""The kiosk's HTTP client for its onsite server's kiosk API (``/api/v1``).

The server's TLS certificate is pinned by the SHA-256 fingerprint learnt at pairing: every
connection checks the certificate it is shown against that fingerprint and refuses any other,
even one a public CA would vouch for (urllib3's ``assert_fingerprint``; CA and host name
checks are then beside the point, and are off). Before pairing, the certificate is read once
from the server itself and pinned for the pairing request; the fingerprint the server reports
in its answer must agree, or nothing is stored.

Errors come back in the two shapes the screens know (``kiosk.backend``): no answer, a
timeout, a 5xx or a certificate that is not the pinned one raise ``Offline``; an RFC 9457
problem answer raises ``Refused`` naming the reason and the first bad field.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

from shared.schemas.bookings import BookingOut, MemberBookingsOut, RescheduleOut
from shared.schemas.identify import IdentifyResponse
from shared.schemas.members import AdvocateLinkResponse
from shared.schemas.pairing import PairResponse
from shared.versions import KIOSK_VERSION_HEADER

from .backend import Offline, Refused

API_PREFIX = "/api/v1"
# This app's version, sent with every request (shared/versions.py); the server refuses a kiosk
# older than its KIOSK_MIN_VERSION.
APP_VERSION = "0.1.0"
# (connect, read) seconds: a kiosk on a dead network must give up fast, and a busy server
# (a backlog draining from other kiosks) still gets time to answer a full batch.
DEFAULT_TIMEOUT = (3.05, 30.0)


class CertificateMismatch(Offline):
    """The server showed a certificate other than the pinned one: nothing was sent."""


class ApiRefused(Refused):
    """A problem answer from the server, with its HTTP status and the problem document."""

    def __init__(self, reason: str, field: str | None, status: int,
                 problem: dict[str, Any] | None = None) -> None:
        super().__init__(reason, field)
        self.status = status
        self.problem = problem or {}


class Unauthorized(ApiRefused):
    """The device token is unknown or revoked: the kiosk must be paired again."""


class TooOld(ApiRefused):
    """The server no longer serves this app version (426): update the kiosk; keep the data."""

    def __init__(self, reason: str, status: int, problem: dict[str, Any] | None,
                 minimum: str) -> None:
        super().__init__(reason, None, status, problem)
        self.minimum = minimum


class RateLimited(ApiRefused):
    """Too many attempts; ``retry_after`` seconds until the server admits another."""

    def __init__(self, reason: str, status: int, problem: dict[str, Any] | None,
                 retry_after: float) -> None:
        super().__init__(reason, None, status, problem)
        self.retry_after = retry_after


def normalise_fingerprint(value: str) -> str:
    """Return a SHA-256 fingerprint as 64 lower-case hex digits (colons and case ignored)."""
    digits = value.replace(":", "").strip().lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError("fingerprint: must be a SHA-256 digest in hex (64 digits)")
    return digits


def server_fingerprint(server_url: str, timeout: float = 5.0) -> str:
    """Read the certificate an https server presents and return its SHA-256 fingerprint.

    Used once, before pairing: it trusts whatever answers (trust on first use), which is why
    the pairing answer's own fingerprint must then agree and every later request is pinned.
    """
    parts = urlsplit(server_url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        raise Offline(f"cannot reach {host}:{port} ({type(exc).__name__})") from exc
    if not der:
        raise Offline(f"{host}:{port} presented no certificate")
    return hashlib.sha256(der).hexdigest()


class _PinnedAdapter(HTTPAdapter):
    """An adapter whose every connection must present the certificate with this fingerprint."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        # One TLS context for every connection, trusting no CA: the pin decides. Without one,
        # urllib3 made a context per connection and loaded the system's CA bundle into it
        # (about 20 ms on this machine, 100 ms and more under load), trust that pinning
        # never uses (docs/BENCHMARKS.md, issue 20 P6, session 11).
        self._context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
        self._context.check_hostname = False
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class Pairing:
    """What pairing leaves the kiosk: where its server is, how to pin it, its token."""

    server_url: str
    token: str
    kiosk_id: str
    fingerprint: str | None
    site: str
    site_name: str
    timezone: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape stored in the kiosk's data directory."""
        return dict(self.__dict__)


class ApiClient:
    """Calls the kiosk API with the device token, pinned to the paired certificate."""

    def __init__(self, server_url: str, *, token: str | None = None,
                 fingerprint: str | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 app_version: str = APP_VERSION, too_old_is_offline: bool = False) -> None:
        self.base = server_url.rstrip("/")
        # The screens' client: to a member, a server that refuses this app version is one
        # that cannot serve now (the sync worker's client keeps TooOld, for the admin screen).
        self.too_old_is_offline = too_old_is_offline
        self.token = token
        self.timeout = timeout
        self.fingerprint = normalise_fingerprint(fingerprint) if fingerprint else None
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not see the token
        self.session.headers[KIOSK_VERSION_HEADER] = app_version
        if self.fingerprint is not None:
            # Pinning replaces CA trust: a CA-valid certificate with another key is refused.
            self.session.verify = False
            self.session.mount("https://", _PinnedAdapter(self.fingerprint))

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, *, json: Any = None,
                headers: dict[str, str] | None = None, auth: bool = True,
                ok: tuple[int, ...] = (200, 201)) -> requests.Response:
        """Send one request; return the response when its status is in ok, else raise."""
        sent = dict(headers or {})
        if auth:
            if not self.token:
                raise Refused("this kiosk is not paired", None)
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self.session.request(method, self.base + API_PREFIX + path, json=json,
                                        headers=sent, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            if "fingerprint" in str(exc).lower():
                raise CertificateMismatch(
                    "the server's certificate is not the one pinned at pairing") from exc
            raise Offline(f"TLS failed ({type(exc).__name__})") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Offline(f"no answer from the server ({type(exc).__name__})") from exc
        if resp.status_code in ok:
            return resp
        error = _error(resp)
        if isinstance(error, TooOld) and self.too_old_is_offline:
            raise Offline(error.reason) from error
        raise error

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        resp = self.request(method, path, json=body, **kw)
        try:
            return resp.json()
        except ValueError as exc:
            raise Offline(f"{path}: the server's answer was not JSON") from exc

    # ------------------------------------------------------------------ operations

    @classmethod
    def pair(cls, server_url: str, pairing_code: str, *, app_version: str = APP_VERSION,
             timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> Pairing:
        """Trade a pairing code for a device token, pinning the server's certificate."""
        url = server_url.rstrip("/")
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise Refused("the server address must start with https://", "server_url")
        seen = server_fingerprint(url) if scheme == "https" else None
        client = cls(url, fingerprint=seen, timeout=timeout, app_version=app_version)
        try:
            data = client._json("POST", "/pair", {"pairing_code": pairing_code,
                                                  "app_version": app_version}, auth=False)
        finally:
            client.close()
        answer = PairResponse.model_validate(data)
        claimed = answer.tls_fingerprint_sha256
        if seen is not None and claimed and normalise_fingerprint(claimed) != seen:
            # Someone between us and the server (a TLS-terminating proxy, an attacker).
            raise CertificateMismatch("the certificate seen differs from the one the server "
                                      "reports; pairing was not stored")
        return Pairing(server_url=url, token=answer.token, kiosk_id=answer.kiosk_id,
                       fingerprint=seen, site=answer.site, site_name=answer.site_name,
                       timezone=answer.timezone)

    def catalog(self, etag: str | None) -> tuple[str | None, dict[str, Any]] | None:
        """Fetch the catalog; None when the copy with ``etag`` is still current (304)."""
        headers = {"If-None-Match": etag} if etag else None
        resp = self.request("GET", "/catalog", headers=headers, ok=(200, 304))
        if resp.status_code == 304:
            return None
        try:
            body: dict[str, Any] = resp.json()
        except ValueError as exc:
            raise Offline("/catalog: the server's answer was not JSON") from exc
        return resp.headers.get("ETag"), body

    def identify(self, typed_id: str, birth_date: str) -> IdentifyResponse:
        """Match a member; raises Refused (404) when nobody matches."""
        data = self._json("POST", "/identify", {"id": typed_id, "birth_date": birth_date})
        return IdentifyResponse.model_validate(data)

    def submit(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a batch of submission items; one answer per item, in order.

        Each batch goes on a connection of its own, closed after the answer, so that whichever
        server process is free takes it. A kept-alive connection stays with the process that
        accepted it: a draining kiosk's two requests in flight then mostly went to one
        process, and the other idled (docs/BENCHMARKS.md, issue 20 P6, session 12). The
        server keeps a connection alive for 2 s and the kiosk syncs every 30 s, so outside a
        drain this costs no handshake that keep-alive would have saved.
        """
        data = self._json("POST", "/submissions", {"items": items},
                          headers={"Connection": "close"})
        results: list[dict[str, Any]] = data["results"]
        return results

    def consent(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Record a member's referral consent (or its withdrawal)."""
        answer: dict[str, Any] = self._json("POST", "/referrals/consent", payload)
        return answer

    def crisis_alert(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Raise an anonymous crisis alert for staff on site."""
        answer: dict[str, Any] = self._json("POST", "/crisis-alerts", payload)
        return answer

    def advocate_link(self, member_ref: str) -> AdvocateLinkResponse:
        """The member's advocate and the advocate-link and vCard QR contents."""
        data = self._json("POST", "/members/advocate-link", {"member_ref": member_ref})
        return AdvocateLinkResponse.model_validate(data)

    def bookings(self, member_ref: str) -> list[BookingOut]:
        """The member's active bookings at this site."""
        data = self._json("POST", "/members/bookings/lookup", {"member_ref": member_ref})
        return list(MemberBookingsOut.model_validate(data).bookings)

    def book(self, key: str, member_ref: str, slot_id: str) -> BookingOut:
        """Book a slot (or join its waitlist)."""
        data = self._json("POST", "/bookings", {"idempotency_key": key,
                                                "member_ref": member_ref, "slot_id": slot_id})
        return BookingOut.model_validate(data)

    def cancel(self, key: str, member_ref: str, booking_id: str) -> BookingOut:
        """Cancel a booking."""
        data = self._json("POST", f"/bookings/{booking_id}/cancel",
                          {"idempotency_key": key, "member_ref": member_ref})
        return BookingOut.model_validate(data)

    def reschedule(self, key: str, member_ref: str, booking_id: str,
                   slot_id: str) -> RescheduleOut:
        """Move a booking to another slot."""
        data = self._json("POST", f"/bookings/{booking_id}/reschedule",
                          {"idempotency_key": key, "member_ref": member_ref,
                           "slot_id": slot_id})
        return RescheduleOut.model_validate(data)

    def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Report the kiosk's health (version, outbox depth, last sync, free disk)."""
        answer: dict[str, Any] = self._json("POST", "/heartbeat", payload)
        return answer


def _error(resp: requests.Response) -> Exception:
    """Map a non-success answer to Offline (the server cannot serve now) or Refused."""
    status = resp.status_code
    if status >= 500:
        return Offline(f"the server answered {status}")
    problem: dict[str, Any] = {}
    try:
        body = resp.json()
        if isinstance(body, dict):
            problem = body
    except ValueError:
        pass
    errors = problem.get("errors")
    field = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
    reason = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    if status == 401:
        return Unauthorized(reason, None, status, problem)
    if status == 426:
        return TooOld(reason, status, problem, str(problem.get("min_kiosk_version") or "?"))
    if status == 429:
        try:
            retry = float(resp.headers.get("Retry-After", "60"))
        except ValueError:
            retry = 60.0
        return RateLimited(reason, status, problem, retry)
    return ApiRefused(reason, field if isinstance(field, str) else None, status, problem)
