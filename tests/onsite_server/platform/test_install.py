"""`onsite-server install` lays out a site whose systemd units verify and whose server starts.

The server is started exactly as systemd would start it: the unit's own ExecStartPre and
ExecStart lines, with ``${VAR}`` expanded from the settings file the install wrote, run as the
service user (a system user the test creates when it runs as root, else the current user).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from onsite_server.install import UNIT_NAMES, Layout, verify_units

pytestmark = pytest.mark.slow
EXE = Path(sys.executable).with_name("onsite-server")
SERVICE_USER = "onsite-test"


def _can_run_python(user: str) -> bool:
    probe = subprocess.run(["runuser", "-u", user, "--", sys.executable, "-c", "pass"],
                           capture_output=True, timeout=60)
    return probe.returncode == 0


@pytest.fixture
def service_user() -> Iterator[str]:
    """A dedicated system user when running as root (removed after), else the current user.

    The dedicated user must be able to run this virtualenv's interpreter; where it cannot (a
    Python installed under /root, as on the development machines), the current user stands in.
    """
    if os.geteuid() != 0 or not _can_run_python("nobody"):
        yield pwd.getpwuid(os.geteuid()).pw_name
        return
    existed = True
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        existed = False
    yield SERVICE_USER
    if not existed:
        subprocess.run(["userdel", SERVICE_USER], check=False, capture_output=True)


@pytest.fixture
def prefix() -> Iterator[Path]:
    """A prefix the service user can reach (pytest's own tmp folders are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="onsite-install-"))
    root.chmod(0o755)
    try:
        yield root / "site"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _install(prefix: Path, user: str) -> subprocess.CompletedProcess[str]:
    args = [str(EXE), "install", "--prefix", str(prefix), "--user", user, "--site", "north"]
    if user == SERVICE_USER:
        args.append("--create-user")
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _settings(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {key: value for key, value in pairs}


def _command(unit: Path, directive: str, env: dict[str, str]) -> list[str]:
    line = next(li for li in unit.read_text().splitlines() if li.startswith(directive + "="))
    # systemd's ${VAR} expansion, which is all the units use.
    expanded = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], line.split("=", 1)[1])
    return shlex.split(expanded)


def _as_user(user: str, command: list[str], env: dict[str, str]) -> list[str]:
    # A clean environment, as systemd gives the unit only its EnvironmentFile.
    assignments = [f"{k}={v}" for k, v in env.items()]
    if user != SERVICE_USER:
        return ["env", "-i", *assignments, *command]
    return ["runuser", "-u", user, "--", "env", "-i", *assignments, *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_install_lays_out_a_site_that_verifies_and_serves(prefix: Path,
                                                          service_user: str) -> None:
    done = _install(prefix, service_user)
    assert done.returncode == 0, done.stderr
    layout = Layout(prefix.resolve())
    owner = pwd.getpwnam(service_user)

    # The settings: private, with a generated secret and this site's paths.
    assert stat.S_IMODE(layout.env_file.stat().st_mode) == 0o600
    settings = _settings(layout.env_file)
    assert len(settings["ONSITE_SECRET_KEY"]) >= 60 and settings["ONSITE_SECRET_KEY"] != "change-me"
    assert settings["ONSITE_INSTANCE_PATH"] == str(layout.instance)
    assert settings["ONSITE_SITE_SLUG"] == "north"
    assert len(settings["ONSITE_BACKUP_PASSPHRASE"]) >= 30
    info = layout.instance.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == owner.pw_uid

    # The units: this prefix's paths, this user, hardening kept, and systemd accepts them.
    for name in (n for n in UNIT_NAMES if n.endswith(".service")):
        text = (layout.unit_dir / name).read_text()
        assert f"User={service_user}" in text and f"EnvironmentFile={layout.env_file}" in text
        assert f"ReadWritePaths={layout.instance}" in text
        hardening = ("ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
                     "PrivateTmp=yes")
        # The long-running services restart; the backup is a oneshot its timer starts again.
        restart = () if name == "onsite-backup.service" else ("Restart=on-failure",)
        for setting in hardening + restart:
            assert setting in text, (name, setting)
    verified = verify_units(layout.unit_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # A second install keeps the secret: it signs every session and member reference.
    assert _install(prefix, service_user).returncode == 0
    assert _settings(layout.env_file)["ONSITE_SECRET_KEY"] == settings["ONSITE_SECRET_KEY"]

    # Start the server as the unit would, on a free loopback port (the operator edits these).
    port = _free_port()
    env = {**settings, "ONSITE_BIND_HOST": "127.0.0.1", "ONSITE_BIND_PORT": str(port),
           "ONSITE_WORKERS": "1", "PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    unit = layout.unit_dir / "onsite-server.service"
    pre = subprocess.run(_as_user(service_user, _command(unit, "ExecStartPre", env), env),
                         capture_output=True, text=True, timeout=120)
    assert pre.returncode == 0, pre.stderr
    log = (prefix.parent / "server.log").open("w")
    server = subprocess.Popen(_as_user(service_user, _command(unit, "ExecStart", env), env),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the self-signed certificate made at first start
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz",
                                            context=context, timeout=5) as resp:
                    status = resp.status
                    break
            except OSError:
                time.sleep(0.3)
        assert status == 200, (prefix.parent / "server.log").read_text()[-3000:]
        # Everything the server made is the service user's and private.
        for path in layout.instance.iterdir():
            assert path.stat().st_uid == owner.pw_uid, path
            if path.is_file():
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        doctor = subprocess.run(
            _as_user(service_user, [str(EXE), "doctor", "--no-central"], env),
            capture_output=True, text=True, timeout=120)
        lines = {line.split()[1]: line for line in doctor.stdout.splitlines() if line.strip()}
        for name in ("config", "database", "migrations", "database-writes", "file-modes",
                     "tls"):
            assert lines[name].startswith("ok"), doctor.stdout
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()
