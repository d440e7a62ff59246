"""Pinning beats CA trust: a CA-signed certificate is refused unless it is the pinned one."""

from __future__ import annotations

import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.api_client import ApiClient, CertificateMismatch

from ...live import POLL


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_and_leaf(folder: Path) -> tuple[Path, Path, Path, bytes]:
    """A CA, and a 127.0.0.1 certificate it signed; return (ca, cert, key paths, leaf DER)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(
                "127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return (*paths, leaf.public_bytes(serialization.Encoding.DER))


class _Heartbeat(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"server_time": "2026-12-01T00:00:00Z", "ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ca_server(tmp_path: Path) -> Iterator[tuple[str, Path, bytes]]:
    """An https server on loopback whose certificate a test CA signed: (url, ca, leaf DER)."""
    ca, cert, key, der = _ca_and_leaf(tmp_path)
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Heartbeat)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL},
                              daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", ca, der
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_ca_valid_certificate_is_refused_when_it_is_not_the_pinned_one(
        ca_server: tuple[str, Path, bytes]) -> None:
    url, ca, der = ca_server
    beat = {"app_version": "t", "outbox_depth": 0, "free_disk_bytes": 1}
    # The certificate is valid for anyone who trusts the CA ...
    with requests.post(url + "/api/v1/heartbeat", json=beat, verify=str(ca), timeout=5) as ok:
        assert ok.status_code == 200
    # ... but a kiosk pinned to another certificate refuses it before sending anything.
    other = hashlib.sha256(b"the certificate seen at pairing").hexdigest()
    pinned = ApiClient(url, token="t", fingerprint=other)
    with pytest.raises(CertificateMismatch):
        pinned.heartbeat(beat)
    pinned.close()
    # Pinned to this very certificate, the same server is accepted.
    right = ApiClient(url, token="t", fingerprint=hashlib.sha256(der).hexdigest())
    assert right.heartbeat(beat)["ok"] is True
    right.close()


def test_a_pinned_client_loads_no_ca_bundle_and_still_refuses_another_certificate(
        ca_server: tuple[str, Path, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 (P6), session 11: the pin decides, so no connection loads the system's CAs.

    urllib3 loaded the whole CA bundle into a new TLS context for every connection the
    pinned client opened (about 20 ms each here, 100 ms and more under load), for a trust
    that pinning never uses.
    """
    loaded: list[object] = []
    load = ssl.SSLContext.load_default_certs

    def counted(self: ssl.SSLContext, *args: object) -> None:
        loaded.append(self)
        load(self, *args)

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", counted)
    url, _ca, der = ca_server
    beat = {"app_version": "t", "outbox_depth": 0, "free_disk_bytes": 1}
    right = ApiClient(url, token="t", fingerprint=hashlib.sha256(der).hexdigest())
    for _ in range(3):
        assert right.heartbeat(beat)["ok"] is True
    right.close()  # the next request opens a new connection
    assert right.heartbeat(beat)["ok"] is True
    right.close()
    other = ApiClient(url, token="t", fingerprint=hashlib.sha256(b"another").hexdigest())
    with pytest.raises(CertificateMismatch):
        other.heartbeat(beat)
    other.close()
    assert loaded == []
