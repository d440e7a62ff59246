"""`onsite-server install`: lay out a site from a checkout, the way the systemd units expect it.

Under a prefix (``/`` on a real machine, any folder in a test) it writes:
- ``etc/onsite-wellness/onsite.env``: the settings, with a generated secret key (mode 0600,
  owned by root: systemd reads it before it drops to the service user);
- ``var/lib/onsite-wellness/``: the instance folder, owned by the service user, mode 0700;
- ``etc/systemd/system/onsite-server.service`` and ``onsite-sync.service``: the units of
  ``deploy/systemd/`` with this prefix's paths and this user.

An existing settings file is kept as it is: a second run must never replace the secret that
signs every session and member reference.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .instance import DIR_MODE, write_private

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "deploy" / "systemd"
ENV_EXAMPLE = REPO / "deploy" / "onsite.env.example"
UNIT_NAMES = ("onsite-server.service", "onsite-sync.service", "onsite-backup.service",
              "onsite-backup.timer")
# The paths of the standard layout, as the units in deploy/systemd/ spell them.
STANDARD_EXECUTABLE = "/opt/onsite-wellness/.venv/bin/onsite-server"
STANDARD_DOCS = "/opt/onsite-wellness/docs"
STANDARD_ENV = "/etc/onsite-wellness/onsite.env"
STANDARD_INSTANCE = "/var/lib/onsite-wellness"


class InstallError(Exception):
    """The layout cannot be made; the message says what to change."""


@dataclass(frozen=True)
class Layout:
    """Where one installation's files go under its prefix."""

    prefix: Path

    @property
    def env_file(self) -> Path:
        """The settings file both units read."""
        return self.prefix / STANDARD_ENV.lstrip("/")

    @property
    def instance(self) -> Path:
        """The instance folder: database, keys, certificate."""
        return self.prefix / STANDARD_INSTANCE.lstrip("/")

    @property
    def unit_dir(self) -> Path:
        """Where the systemd units are written."""
        return self.prefix / "etc" / "systemd" / "system"


def _account(user: str) -> tuple[int, int, str]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise InstallError(f"there is no user {user!r}: create it first "
                           f"(useradd --system --home-dir {STANDARD_INSTANCE} --shell "
                           f"/usr/sbin/nologin {user}) or pass --create-user") from None
    return entry.pw_uid, entry.pw_gid, grp.getgrgid(entry.pw_gid).gr_name


def create_system_user(user: str, home: Path) -> None:
    """Create a system user with no log-in shell, unless it exists."""
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise InstallError("creating a system user needs root")
    subprocess.run(["useradd", "--system", "--user-group", "--home-dir", str(home),
                    "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)


def settings_text(layout: Layout, site: str) -> str:
    """Return the settings file: the example's text with this site's values and a new secret."""
    values = {
        "ONSITE_INSTANCE_PATH": str(layout.instance),
        "ONSITE_SECRET_KEY": secrets.token_urlsafe(48),
        "ONSITE_SITE_SLUG": site,
        "ONSITE_BACKUP_PASSPHRASE": secrets.token_urlsafe(24),
    }
    lines = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if "=" in line and key in values else line)
    return "\n".join(lines) + "\n"


def unit_text(name: str, layout: Layout, user: str, group: str, executable: Path) -> str:
    """Return one unit of deploy/systemd/ with this layout's paths and account."""
    text = (UNITS / name).read_text(encoding="utf-8")
    for standard, actual in ((STANDARD_EXECUTABLE, str(executable)),
                             (STANDARD_DOCS, str(REPO / "docs")),
                             (STANDARD_ENV, str(layout.env_file)),
                             (STANDARD_INSTANCE, str(layout.instance)),
                             ("User=onsite", f"User={user}"),
                             ("Group=onsite", f"Group={group}")):
        text = text.replace(standard, actual)
    return text


def install(prefix: Path, user: str, site: str = "demo", *,
            executable: Path | None = None) -> list[Path]:
    """Lay out the settings, the instance folder and the units; return the paths written."""
    layout = Layout(prefix.resolve())
    uid, gid, group = _account(user)
    if os.geteuid() != 0 and uid != os.geteuid():
        raise InstallError(f"only root can give the instance folder to {user!r}")
    exe = executable or Path(sys.executable).parent / "onsite-server"
    if not exe.exists():
        raise InstallError(f"{exe} does not exist: run this from the project's virtualenv")
    written: list[Path] = []

    layout.env_file.parent.mkdir(parents=True, exist_ok=True)
    if not layout.env_file.exists():
        write_private(layout.env_file, settings_text(layout, site).encode())
        written.append(layout.env_file)

    layout.instance.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(layout.instance, DIR_MODE)
    os.chown(layout.instance, uid, gid)
    written.append(layout.instance)

    layout.unit_dir.mkdir(parents=True, exist_ok=True)
    for name in UNIT_NAMES:
        path = layout.unit_dir / name
        path.write_text(unit_text(name, layout, user, group, exe), encoding="utf-8")
        path.chmod(0o644)  # units are public configuration; systemd warns on others
        written.append(path)
    return written


def verify_units(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``systemd-analyze verify`` on the units in unit_dir and return its result."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        raise InstallError("systemd-analyze is not installed (Debian package systemd)")
    units = [str(unit_dir / name) for name in UNIT_NAMES]
    return subprocess.run([tool, "verify", *units], capture_output=True, text=True,
                          check=False)

