"""The web edge: which Host names are answered, and the security headers on every answer.

Trusted hosts: Werkzeug builds absolute URLs (the slash redirect of ``/dashboard``, for one)
from the request's Host header, so a forged Host would send a browser elsewhere. Flask refuses
a Host not in ``TRUSTED_HOSTS`` with a 400 before any view runs. Unless the site sets
``TRUSTED_HOSTS``, the list is what kiosks and browsers can really use to reach this machine:
its loopback names, its host name and FQDN, its IPv4 interface addresses and the names in its
TLS certificate. Loopback names are trusted in every case, so local health checks keep working.

Headers: every answer, errors and ``/healthz`` included, says ``nosniff``, a referrer of the
origin only (``REFERRER_POLICY``), no framing (CSP ``frame-ancestors 'none'``), and HSTS when
TLS is on. Nothing is cached (``Cache-Control: no-store``): the kiosk API carries member
references, bookings and referrals, and the dashboard shows who booked. The exceptions carry
no member data and keep their own header: the kiosk catalog (``no-cache``, revalidated with
its ETag) and the public signing keys at ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import struct
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import SecurityError

from .app_settings import of as settings_of
from .errors import error_response

log = logging.getLogger(__name__)

# Always trusted: a request naming a loopback host can only make links back to this machine.
# No IPv6 literals: Werkzeug (3.1) cannot match a Host of "[::1]" against any list entry.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
# The endpoints that carry no member data and set their own caching; everything else is
# no-store. The catalog revalidates with its ETag; the public signing keys may be cached a while.
OWN_CACHING_ENDPOINTS = frozenset({"api.get_catalog", "wellknown.jwks",
                                   "wellknown.smart_client_jwks"})
HSTS = "max-age=31536000"
# The origin alone, never the path or query, and nothing on a downgrade to plain HTTP. On HTTPS
# Flask-WTF's CSRF check refuses a form POST without a Referer of this origin, so the policy
# must let one through: under "no-referrer" Chromium sends none (and "Origin: null"), and
# every log-in answered 400. The check compares scheme, host and port only, so a path is never
# needed; leaving it out keeps link tokens and the check-in search's member names out of
# Referer headers, our own access log included (which "same-origin" would fill with them).
REFERRER_POLICY = "strict-origin"
# JSON and other non-HTML answers load nothing at all.
CSP_NONE = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Dashboard and advocate pages: own resources only. Inline styles are allowed because the
# pages and error pages carry style attributes; scripts stay limited to our own files.
CSP_HTML = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def init_app(app: Flask) -> None:
    """Set Flask's TRUSTED_HOSTS from the configuration and add the security headers."""
    settings = settings_of(app)
    # Flask's own key, read by Flask: the configured names resolved to the hosts answered.
    app.config["TRUSTED_HOSTS"] = trusted_hosts(settings.trusted_hosts, settings.tls_cert)
    tls_configured = bool(settings.tls_cert)

    @app.errorhandler(SecurityError)
    def _untrusted_host(exc: SecurityError) -> Response:
        # Flask raises this before routing when the Host is not in TRUSTED_HOSTS.
        log.warning("refused a request for an untrusted Host header")
        return error_response(400, "Bad Request", "The Host header names a host this server "
                              "does not answer to.",
                              errors=[{"field": "Host", "message": "is not a trusted host"}])

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # Never touch request.host here: for a refused Host it would raise again.
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = REFERRER_POLICY
        headers["X-Frame-Options"] = "DENY"  # frame-ancestors, for browsers without CSP 2
        html = response.mimetype == "text/html"
        headers["Content-Security-Policy"] = CSP_HTML if html else CSP_NONE
        if tls_configured or request.is_secure:
            # Browsers ignore HSTS received over plain HTTP or over a certificate they did not
            # accept, so a self-signed first visit can still be clicked through.
            headers["Strict-Transport-Security"] = HSTS
        if not (request.endpoint in OWN_CACHING_ENDPOINTS and "Cache-Control" in headers):
            headers["Cache-Control"] = "no-store"
        return response


def trusted_hosts(configured: Sequence[str], tls_cert: str | None) -> list[str] | None:
    """Return the Host names to answer: TRUSTED_HOSTS if set, else this machine's; None = any."""
    if configured and "*" in configured:
        log.warning("TRUSTED_HOSTS contains '*': every Host header is answered")
        return None
    hosts = list(configured) if configured else default_trusted_hosts(tls_cert)
    return _unique([*LOOPBACK_HOSTS, *hosts])


def default_trusted_hosts(tls_cert: str | None = None) -> list[str]:
    """Return this machine's names and IPv4 addresses, plus the names in its TLS certificate."""
    hosts = list(_machine_hosts())
    if tls_cert:
        hosts += certificate_hosts(tls_cert)
    return _unique(hosts)


@functools.cache
def _machine_hosts() -> tuple[str, ...]:
    # Cached per process: getfqdn can wait on a slow DNS server, and every app built in this
    # process (each gunicorn worker, each test) would wait again.
    names: list[str] = []
    hostname = socket.gethostname()
    fqdn = socket.getfqdn()
    names += [hostname, fqdn]
    for name in (hostname, fqdn):
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET)
        except OSError:
            continue
        names += [str(info[4][0]) for info in infos]
    names += _interface_addresses()
    return tuple(_unique(n.lower() for n in names if n))


def _interface_addresses() -> list[str]:
    """Return the IPv4 address of each network interface (Linux; elsewhere an empty list)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    out: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            request_buf = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request_buf)
            except OSError:
                continue  # an interface without an IPv4 address
            out.append(socket.inet_ntoa(answer[20:24]))
    return out


def certificate_hosts(cert_path: str | Path) -> list[str]:
    """Return the DNS names and IP addresses in a certificate's subjectAltName."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return []  # the TLS setup itself reports an unreadable certificate
    names = [str(n) for n in san.get_values_for_type(x509.DNSName) if not n.startswith("*")]
    addresses = [str(a) for a in san.get_values_for_type(x509.IPAddress)
                 if isinstance(a, ipaddress.IPv4Address)]
    return [*names, *addresses]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
