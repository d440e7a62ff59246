"""TLS: `serve` makes a self-signed certificate at first start and pairing pins it."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from onsite_server.devserver import free_port
from onsite_server.tls import ensure_self_signed, fingerprint_sha256

from ..cli_in_process import run_cli


def test_self_signed_certificate_is_made_once(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path)
    first = fingerprint_sha256(cert)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    cert2, _ = ensure_self_signed(tmp_path)
    assert fingerprint_sha256(cert2) == first
    assert len(first) == 64


@pytest.mark.slow
def test_serve_over_tls_and_pairing_returns_fingerprint(tmp_path: Path) -> None:
    instance = tmp_path / "inst"
    env = {**os.environ, "ONSITE_INSTANCE_PATH": str(instance),
           "ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'tls.sqlite'}"}
    cli = [sys.executable, "-m", "onsite_server.cli"]
    # The demo site by its command, in this process; `serve` is what this test is about.
    out = run_cli(env, "demo-data")
    assert out.exit_code == 0, out.output
    import json

    code = json.loads(out.stdout.strip().splitlines()[-1])["pairing_code"]
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cert = instance / "tls_cert.pem"
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if cert.exists() and requests.get(url + "/healthz", verify=str(cert),
                                                  timeout=2).ok:
                    break
            # Not up yet, or (on a busy machine) its handshake not answered within the 2 s.
            except (requests.ConnectionError, requests.exceptions.SSLError, requests.Timeout):
                pass
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start over TLS"
            time.sleep(0.3)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/healthz", timeout=5)  # not trusted without pinning
        paired = requests.post(url + "/api/v1/pair", json={"pairing_code": code},
                               verify=str(cert), timeout=10)
        assert paired.status_code == 201
        served = ssl.get_server_certificate(("127.0.0.1", port))
        assert paired.json()["tls_fingerprint_sha256"] == fingerprint_sha256(cert)
        import hashlib

        assert hashlib.sha256(ssl.PEM_cert_to_DER_cert(served)).hexdigest() == \
            paired.json()["tls_fingerprint_sha256"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
