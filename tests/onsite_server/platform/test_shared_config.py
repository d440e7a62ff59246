"""MULTI_NODE: every node reads the secret, signing keys and TLS from shared settings (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from onsite_server import create_app
from onsite_server.cli import main
from onsite_server.config import ConfigError
from onsite_server.db import get_db

pytestmark = pytest.mark.sqlite_only


def _node(tmp_path: Path, n: int, **extra: Any) -> dict[str, Any]:
    return {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite'}",
            "INSTANCE_PATH": str(tmp_path / f"node{n}"), "MULTI_NODE": True, **extra}


def test_a_node_without_a_shared_secret_refuses_to_start_and_makes_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^SECRET_KEY: with MULTI_NODE"):
        create_app(_node(tmp_path, 1, SIGNING_KEY_DIR=str(tmp_path / "keys")))
    assert not (tmp_path / "node1" / "secret_key").exists()


def test_a_node_without_the_shared_keys_refuses_to_start_and_makes_none(tmp_path: Path) -> None:
    keys = tmp_path / "shared-keys"
    with pytest.raises(ConfigError, match="SIGNING_KEY_DIR: no advocate_link or ticket") as bad:
        create_app(_node(tmp_path, 1, SECRET_KEY="shared", SIGNING_KEY_DIR=str(keys)))
    assert "make-signing-keys" in str(bad.value)
    assert not keys.exists()
    with pytest.raises(ConfigError, match="^SIGNING_KEY_DIR: with MULTI_NODE"):
        create_app(_node(tmp_path, 1, SECRET_KEY="shared"))  # the instance's own: refused
    inside = tmp_path / "node1" / "keys"
    with pytest.raises(ConfigError, match="inside this node's instance folder"):
        create_app(_node(tmp_path, 1, SECRET_KEY="shared", SIGNING_KEY_DIR=str(inside)))


def test_two_nodes_share_the_keys_made_once_and_keep_none_of_their_own(tmp_path: Path) -> None:
    keys = tmp_path / "etc" / "keys"
    made = CliRunner().invoke(main, ["make-signing-keys", "--dir", str(keys)])
    assert made.exit_code == 0, made.output
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in keys.glob("*.pem"))
    again = CliRunner().invoke(main, ["make-signing-keys", "--dir", str(keys)])
    assert again.output == made.output  # kept, not replaced
    published = []
    for n in (1, 2):
        app = create_app(_node(tmp_path, n, SECRET_KEY="shared", SIGNING_KEY_DIR=str(keys)))
        try:
            if n == 1:
                from onsite_server.migrate import upgrade

                upgrade(get_db(app))
            published.append(app.test_client().get("/.well-known/jwks.json").get_json())
        finally:
            get_db(app).dispose()
        instance = tmp_path / f"node{n}"
        assert not (instance / "secret_key").exists() and not (instance / "keys").exists()
    assert published[0] == published[1] and len(published[0]["keys"]) == 2
    assert {k["kid"] for k in published[0]["keys"]} <= set(made.output.replace(":", " ").split())


def test_tls_comes_from_settings_or_ends_at_the_proxy(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert CliRunner().invoke(main, ["make-signing-keys", "--dir", str(keys)]).exit_code == 0
    with pytest.raises(ConfigError, match="TLS_CERT and TLS_KEY"):
        create_app(_node(tmp_path, 1, SECRET_KEY="s", SIGNING_KEY_DIR=str(keys),
                         TLS_CERT=str(tmp_path / "cert.pem")))
    env = {**os.environ, "ONSITE_MULTI_NODE": "1", "ONSITE_SECRET_KEY": "s",
           "ONSITE_SIGNING_KEY_DIR": str(keys), "ONSITE_INSTANCE_PATH": str(tmp_path / "node1"),
           "ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite'}"}
    served = subprocess.run([sys.executable, "-m", "onsite_server.cli", "serve", "--port", "9"],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert served.returncode == 2 and "--no-tls behind the proxy" in served.stderr
    assert not (tmp_path / "node1" / "tls_cert.pem").exists()  # no per-node certificate made
