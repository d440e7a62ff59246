"""Several server nodes behind a proxy: what every node must read from shared configuration.

A node on its own makes what it lacks in its instance folder: a secret key, signing keys, a
self-signed certificate. Behind a proxy that would split the site: a session or member
reference signed on one node would be refused on the next, and so would its tickets and
advocate links. With ``MULTI_NODE`` a node makes none of them: the secret comes from
``SECRET_KEY``, the signing keys from ``SIGNING_KEY_DIR`` (outside the instance folder, made
once with ``onsite-server make-signing-keys`` and copied to every node), and TLS either ends at
the proxy (``serve --no-tls``) or comes from ``TLS_CERT``/``TLS_KEY``. A node missing any of
them refuses to start and says which setting to fix. Rate limits, log-in lock-outs and
dashboard sessions are rows in the shared database already (``services/ratelimit.py``,
``user_session``), so any node can answer any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.tokens import Purpose

from .config import ConfigError


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def missing_signing_keys(folder: Path) -> list[str]:
    """The purposes with no signing key in the folder."""
    return [p.label for p in Purpose if not any(folder.glob(f"{p.label}-*.pem"))]


def check_shared_material(config: Mapping[str, Any], instance_path: str | Path) -> None:
    """With MULTI_NODE, refuse a node that would make its own secret, keys or certificate."""
    instance = Path(instance_path).resolve()
    if not config.get("SECRET_KEY"):
        raise ConfigError("SECRET_KEY: with MULTI_NODE every node reads the same secret from its "
                          "settings (ONSITE_SECRET_KEY); none is set, and a node would make "
                          "its own")
    folder_setting = config.get("SIGNING_KEY_DIR")
    if not folder_setting:
        raise ConfigError("SIGNING_KEY_DIR: with MULTI_NODE the signing keys come from a folder "
                          "shared by every node; set ONSITE_SIGNING_KEY_DIR")
    folder = Path(str(folder_setting)).resolve()
    if _inside(folder, instance):
        raise ConfigError(f"SIGNING_KEY_DIR: {folder} is inside this node's instance folder; "
                          "with MULTI_NODE keep the keys every node shares elsewhere "
                          "(for example /etc/onsite-wellness/keys)")
    missing = missing_signing_keys(folder)
    if missing:
        raise ConfigError(f"SIGNING_KEY_DIR: no {' or '.join(missing)} signing key in {folder}; "
                          f"make them once with `onsite-server make-signing-keys --dir {folder}` "
                          "and copy the folder to every node")
    cert, key = config.get("TLS_CERT"), config.get("TLS_KEY")
    if bool(cert) != bool(key):
        raise ConfigError("TLS_CERT and TLS_KEY: with MULTI_NODE set both (the same pair on "
                          "every node) or neither (TLS ends at the proxy: serve --no-tls)")
    for name, value in (("TLS_CERT", cert), ("TLS_KEY", key)):
        if value and _inside(Path(str(value)).resolve(), instance):
            raise ConfigError(f"{name}: {value} is inside this node's instance folder; with "
                              "MULTI_NODE every node reads the same pair from shared settings")
