"""The HTTP client to the central advocate system (FHIR R4): timeouts, auth, and what failed.

Authentication is SMART Backend Services where central offers it (a client-credentials grant
with a JWT assertion signed ES384 or RS384, the access token cached until shortly before it
expires), or a static bearer token when configured (the emulator). Every failure says whether
a retry can help: 400, 409, 412 and 422 are permanent (DESIGN.md §6: they go to the
dead-letter list), everything else (no connection, a timeout, 5xx, 429, a lost reply) is
retried with backoff.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .central_answers import PERMANENT as PERMANENT  # re-exported: callers import it here
from .central_answers import CentralError as CentralError
from .central_answers import (
    check_page,
    confirm_transaction,
    no_answer,
    retry_after,
)
from .central_answers import refusal as _refusal
from .central_http import REDIRECTS, Answer, SteadySession, origin

if TYPE_CHECKING:
    from .settings import CentralSettings

FHIR_JSON = "application/fhir+json"
# SMART v2 scopes (SMART App Launch 2.0, "Scopes for requesting FHIR resources"): per type,
# c create, r read, u update, d delete, s search, in that order. What the sync writes and
# reads, and nothing else; tests/onsite_server/test_smart_client.py checks every resource of
# every sample message and every search against it.
SCOPE_PERMISSIONS = {
    "Patient": "crus", "Observation": "cu", "QuestionnaireResponse": "cu",
    "ServiceRequest": "crus", "Task": "crus", "CareTeam": "crus", "Appointment": "cu",
    "Communication": "cu", "CommunicationRequest": "crus", "Binary": "cu",
    "Practitioner": "rs", "PractitionerRole": "rs",
    "Device": "c",  # the cuff or scale behind a vital sign (issue 19)
}
SCOPES = " ".join(f"system/{kind}.{perms}" for kind, perms in SCOPE_PERMISSIONS.items())
DISCOVERY = ".well-known/smart-configuration"
# Redirects followed for one request, at most (each within central's own address).
MAX_REDIRECTS = 3


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """Return a public JWK's RFC 7638 thumbprint (SHA-256, base64url): the default key id."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[str(jwk["kty"])]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"),
                           sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def public_jwk(private_key_pem: bytes) -> dict[str, Any]:
    """Return the public half of our SMART key as a JWK (without kid, alg or use)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        return {"kty": "EC", "crv": f"P-{key.curve.key_size}",
                "x": _b64(numbers.x.to_bytes(size, "big")),
                "y": _b64(numbers.y.to_bytes(size, "big"))}
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _b64(_uint(rsa_numbers.n)), "e": _b64(_uint(rsa_numbers.e))}
    raise ValueError("the SMART key must be an EC P-384 or RSA private key")


def _uint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class SmartAuth:
    """SMART Backend Services: a signed JWT assertion traded for a short-lived access token."""

    client_id: str
    # None: discovered from central's .well-known/smart-configuration at the first token.
    token_url: str | None
    private_key_pem: bytes
    key_id: str | None = None
    scope: str = SCOPES
    base_url: str = ""
    # Where central may fetch our public keys (the assertion's jku), when it is told one.
    jwks_url: str | None = None
    _token: str | None = field(default=None, repr=False)
    _expires: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def assertion(self, now: float | None = None) -> str:
        """Return the client assertion JWT, signed ES384 (EC P-384) or RS384 (RSA)."""
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        moment = int(now if now is not None else time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url or "",
                  "exp": moment + 300, "iat": moment, "jti": str(uuid.uuid4())}
        if isinstance(key, ec.EllipticCurvePrivateKey):
            alg = "ES384"
        elif isinstance(key, rsa.RSAPrivateKey):
            alg = "RS384"
        else:
            raise ValueError("the SMART key must be an EC P-384 or RSA private key")
        # SMART Backend Services requires kid: central picks our key by it.
        header: dict[str, Any] = {"alg": alg, "typ": "JWT", "kid": self.kid}
        if self.jwks_url:
            header["jku"] = self.jwks_url
        signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA384())))
            size = (key.curve.key_size + 7) // 8
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        else:
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA384())
        return signing_input.decode() + "." + _b64(signature)

    @property
    def kid(self) -> str:
        """The key id in our assertions: CENTRAL_KEY_ID, else the key's RFC 7638 thumbprint."""
        return self.key_id or jwk_thumbprint(public_jwk(self.private_key_pem))

    def jwks(self) -> dict[str, Any]:
        """Our public key as the JWK Set central registers (or fetches from jwks_url)."""
        key = public_jwk(self.private_key_pem)
        alg = "ES384" if key["kty"] == "EC" else "RS384"
        return {"keys": [{**key, "kid": self.kid, "alg": alg, "use": "sig"}]}

    def forget_token(self, token: str) -> None:
        """Drop a cached token central refused (401): the next request fetches a new one."""
        with self._lock:
            if self._token == token:
                self._token, self._expires = None, 0.0

    def _discover(self, http: requests.Session, timeout: float) -> str:
        url = f"{self.base_url.rstrip('/')}/{DISCOVERY}"
        try:
            resp = http.get(url, timeout=timeout, headers={"Accept": "application/json"})
            endpoint = resp.json().get("token_endpoint") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError) as exc:
            raise CentralError(f"SMART discovery at {url} failed: {type(exc).__name__}"
                               ) from exc
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise CentralError(f"SMART discovery at {url} answered {resp.status_code} with no "
                               "token_endpoint", status=resp.status_code)
        if endpoint.startswith("http://") and not self.base_url.startswith("http://"):
            # Our signed assertion must not travel in clear because a document said so.
            raise CentralError(f"SMART discovery named a plain http:// token endpoint "
                               f"({endpoint}) for an https:// central", retryable=False)
        return endpoint

    def token(self, http: requests.Session, timeout: float) -> str:
        """Return a cached access token, fetching a new one a minute before it expires."""
        with self._lock:
            if self._token and time.time() < self._expires - 60:
                return self._token
            if self.token_url is None:
                self.token_url = self._discover(http, timeout)
            try:
                resp = http.post(self.token_url, timeout=timeout, data={
                    "grant_type": "client_credentials", "scope": self.scope,
                    "client_assertion_type":
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": self.assertion()})
            except requests.RequestException as exc:
                raise CentralError(f"token request failed: {type(exc).__name__}") from exc
            if resp.status_code != 200:
                error = _oauth_error(resp)
                if error == "invalid_client":
                    # Not transient: the key or client id is wrong at central. Retrying only
                    # repeats the refusal (and may lock the client out).
                    raise CentralError("central refused our SMART client credentials "
                                       "(invalid_client): check CENTRAL_CLIENT_ID and that "
                                       f"central holds our public key (kid {self.kid})",
                                       status=resp.status_code, credentials_refused=True)
                raise CentralError(f"token request answered {resp.status_code}"
                                   + (f" ({error})" if error else ""), status=resp.status_code)
            try:
                data = resp.json()
                token, lifetime = str(data["access_token"]), float(data.get("expires_in", 300))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise CentralError(f"token request answered 200 without an access_token "
                                   f"({type(exc).__name__})") from exc
            self._token, self._expires = token, time.time() + lifetime
            return self._token


def _oauth_error(resp: requests.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else None


@dataclass
class CentralClient:
    """Talks to one central FHIR R4 base URL."""

    base_url: str
    bearer: str | None = None
    smart: SmartAuth | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_pages: int = 1000  # of one search: far more than a site's directory needs
    http: requests.Session = field(default_factory=SteadySession)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
        if self.smart is not None:
            headers["Authorization"] = "Bearer " + self.smart.token(self.http,
                                                                   self.connect_timeout)
        elif self.bearer:
            headers["Authorization"] = "Bearer " + self.bearer
        return headers

    def _send_once(self, method: str, url: str, headers: Mapping[str, str],
                   data: bytes | None, params: Mapping[str, str] | None
                   ) -> requests.Response | Answer:
        """Send one request as it is (no redirect followed); no answer is a CentralError."""
        timeout = (self.connect_timeout, self.read_timeout)
        # A transaction (no query) goes straight to requests' connection pool for the
        # address, where nothing of requests' per-request work would change it (_Direct).
        direct = self.http.direct(url) if params is None and \
            isinstance(self.http, SteadySession) else None
        try:
            if direct is not None:
                return direct.send(method, url, headers, data, timeout)
            return self.http.request(method, url, headers=headers, params=params, data=data,
                                     timeout=timeout, allow_redirects=False)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # No answer (down, slow, or the reply lost after central committed): the same
            # idempotent bundle is simply sent again later.
            raise CentralError(f"{method} {url}: {no_answer(exc, self.read_timeout)}"
                               ) from exc

    def _send(self, method: str, url: str, body: Any, params: Mapping[str, str] | None
              ) -> tuple[requests.Response | Answer, dict[str, str]]:
        headers = self._headers()
        data = None if body is None else json.dumps(body).encode("utf-8")
        for _hop in range(MAX_REDIRECTS + 1):
            resp = self._send_once(method, url, headers, data, params)
            if resp.status_code not in REDIRECTS:
                return resp, headers
            url, params = self._redirected(method, url, resp), None
        raise CentralError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")

    def _redirected(self, method: str, url: str, resp: requests.Response | Answer) -> str:
        """Return where a redirect leads, when it may be followed; else raise CentralError.

        Only to central's own scheme, host and port (our token and members' data go with the
        request), and a write only on 307 or 308, which keep the method and the body (a 301,
        302 or 303 would turn the transaction into a GET that sends nothing).
        """
        location = urljoin(url, resp.headers.get("Location") or "")
        status = resp.status_code
        if origin(location) != origin(self.base_url):
            why = "it leads away from CENTRAL_URL's address"
        elif method != "GET" and status not in (307, 308):
            why = f"a {status} would turn the {method} into a GET"
        else:
            return location
        raise CentralError(f"{method} {url} answered {status}, a redirect to {location}: not "
                           f"followed, {why}. If central has moved, set CENTRAL_URL to its new "
                           "address", status=status)

    def _call(self, method: str, url: str, body: Any = None,
              params: Mapping[str, str] | None = None) -> Any:
        resp, headers = self._send(method, url, body, params)
        if resp.status_code == 401 and self.smart is not None:
            # Central forgot the token (a restart, a revocation) before it expired: a new
            # token, once, then the same request again; a second 401 is an answer.
            self.smart.forget_token(headers["Authorization"].removeprefix("Bearer "))
            resp, _headers = self._send(method, url, body, params)
        if resp.status_code >= 300:
            try:
                detail: Any = resp.json()
            except ValueError:
                detail = resp.text[:500]
            raise CentralError(f"{method} {url} answered {resp.status_code}"
                               + _refusal(resp.status_code, detail),
                               status=resp.status_code,
                               retryable=resp.status_code not in PERMANENT, body=detail,
                               retry_after=retry_after(resp.headers.get("Retry-After")))
        try:
            return resp.json()
        except ValueError as exc:
            raise CentralError(f"{method} {url} answered {resp.status_code}, but not with "
                               "JSON") from exc

    def authenticate(self) -> None:
        """Get (or reuse) the SMART access token; raises CentralError as a request would."""
        if self.smart is not None:
            self.smart.token(self.http, self.connect_timeout)

    def transaction(self, bundle: Mapping[str, Any]) -> Any:
        """POST a transaction Bundle to the base URL; return the transaction-response.

        Only a transaction-response with one successful entry per entry sent says central
        kept the Bundle; any other answer (an OperationOutcome, a body of another kind, fewer
        entries) is a CentralError, so the row is sent again rather than recorded as sent.
        """
        url = self.base_url.rstrip("/")
        answer = self._call("POST", url, dict(bundle))
        confirm_transaction(url, bundle, answer)
        return answer

    def search(self, resource_type: str, params: Mapping[str, str], *,
               pages: int | None = None) -> list[dict[str, Any]]:
        """Run a FHIR search and return the matching resources of every page.

        Pages are followed by their ``Bundle.link[next]``, which must stay on central's own
        scheme, host and port (our token goes with every request); ``max_pages`` bounds a
        server that never stops answering "next". ``pages`` reads only that many (a probe).
        """
        url = f"{self.base_url.rstrip('/')}/{resource_type}"
        bundle = check_page(url, self._call("GET", url, params=params))
        found: list[dict[str, Any]] = []
        seen = {url}
        for page in range(1, self.max_pages + 1):
            found += [e["resource"] for e in bundle.get("entry", [])
                      if "resource" in e and (e.get("search") or {}).get("mode",
                                                                        "match") == "match"]
            following = next_link(bundle)
            if following is None or page == pages:
                return found
            if origin(following) != origin(self.base_url):
                raise CentralError(f"search {resource_type}: the next page is at another "
                                   f"address ({following}); not followed", retryable=False)
            if following in seen:
                raise CentralError(f"search {resource_type}: the next page repeats an earlier "
                                   "one", retryable=False)
            seen.add(following)
            bundle = check_page(following, self._call("GET", following))
        raise CentralError(f"search {resource_type}: more than {self.max_pages} pages; the "
                           "search is too broad", retryable=False)


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """Return a searchset Bundle's ``next`` link, or None on the last page."""
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def check_transport(central: CentralSettings) -> None:
    """Refuse a central address that would carry the bearer token or the SMART grant in clear.

    Plain ``http://`` is allowed only when CENTRAL_ALLOW_INSECURE_HTTP says so, for the local
    emulator (scripts/run.sh sets it); anything but http or https is refused outright.
    """
    from .config import ConfigError

    urls = {"CENTRAL_URL": central.central_url}
    if central.central_token_url:
        urls["CENTRAL_TOKEN_URL"] = central.central_token_url
    for key, url in urls.items():
        scheme = urlsplit(url).scheme.lower()
        if scheme == "https":
            continue
        if scheme == "http" and central.central_allow_insecure_http:
            continue
        if scheme == "http":
            raise ConfigError(
                f"{key} is plain http:// ({url}): the sync would send its access token and "
                "members' health data unencrypted. Use https://, or set "
                "CENTRAL_ALLOW_INSECURE_HTTP=true for a local test emulator only")
        raise ConfigError(f"{key} must be an https:// address, got {url!r}")


def client_from_config(config: Mapping[str, Any]) -> CentralClient:
    """Build the client from raw CENTRAL_* keys (tests, benches): see :func:`client_for`."""
    from .settings import CentralSettings

    return client_for(CentralSettings.from_config(config))


def client_for(central: CentralSettings) -> CentralClient:
    """Build the client from the CENTRAL_* settings: SMART when a client id and key are set.

    Raises ConfigError for a plain http:// address unless CENTRAL_ALLOW_INSECURE_HTTP is set.
    """
    check_transport(central)
    smart = None
    if central.central_client_id and central.central_private_key_path:
        with open(central.central_private_key_path, "rb") as handle:
            pem = handle.read()
        # Unless configured, the token endpoint is what central's SMART discovery document
        # names, read at the first token request (never guessed from the base URL).
        smart = SmartAuth(client_id=central.central_client_id,
                          token_url=central.central_token_url,
                          private_key_pem=pem, key_id=central.central_key_id,
                          base_url=central.central_url,
                          jwks_url=central.central_client_jwks_url)
    return CentralClient(base_url=central.central_url, bearer=central.central_token,
                         smart=smart, connect_timeout=central.central_connect_timeout_seconds,
                         read_timeout=central.central_read_timeout_seconds)
