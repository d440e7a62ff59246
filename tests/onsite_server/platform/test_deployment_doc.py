"""Every command in docs/deployment.md is exercised by a test (issue 18).

The commands are read from the doc's ``sh`` code blocks. Each one is either run here, in a
sandbox (paths under a temporary root, the current user for the service user, this checkout
for ``/opt/onsite-wellness``), or matched to the test that runs it, whose source must hold the
invocation named here. A command added to the doc that nothing exercises fails
``test_every_command_is_exercised``; an entry here no command matches fails it too.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "deployment.md"
EXE = Path(sys.executable).with_name("onsite-server")
_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
HERE = "tests/onsite_server/platform/test_deployment_doc.py"


def doc_commands(text: str) -> list[str]:
    """The commands of every sh block: comments dropped, continued lines joined."""
    found: list[str] = []
    block: list[str] | None = None
    lang = indent = ""
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence and block is None:
            block, indent, lang = [], fence.group(1), fence.group(2)
        elif fence and block is not None:
            if lang in ("sh", "bash", "shell"):
                found += _commands(block)
            block = None
        elif block is not None:
            block.append(line.removeprefix(indent))
    return found


def _commands(lines: list[str]) -> list[str]:
    out: list[str] = []
    pending = ""
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"\s+#.*$", "", line)  # a comment after the command
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        out.append((pending + line).strip())
        pending = ""
    return out


@dataclass(frozen=True)
class Covered:
    """Doc commands matching ``pattern`` are run by the test file ``by``, which holds ``proof``."""

    pattern: str
    by: str
    proof: tuple[str, ...]


# How each of the doc's commands is exercised. `HERE`: test_the_safe_commands_run_in_a_sandbox
# below runs it. Elsewhere: a test that runs it (or, for systemd and the boot loader, which this
# machine has not got running, what can be checked of them without a booted system).
COVERAGE = (
    Covered(r"^apt-get install -y [a-z0-9 -]+$", HERE, ("apt-cache",)),
    Covered(r"^git clone <this repository> /opt/onsite-wellness && cd /opt/onsite-wellness$",
            HERE, ('["git", "clone"',)),
    Covered(r"^(cd /opt/onsite-wellness && git pull && )?scripts/bootstrap\.sh run$",
            "tests/scripts/test_run_command.py", ("bootstrap", "venv")),
    Covered(r"^\.venv/bin/onsite-server install --create-user --user onsite --site north$",
            "tests/onsite_server/platform/test_install.py", ('"--create-user"', '"install"')),
    Covered(r"^\$EDITOR /etc/onsite-wellness/onsite\.env$",
            "tests/onsite_server/platform/test_install.py", ("the operator edits these",)),
    Covered(r"^systemctl (daemon-reload && systemctl enable --now|stop|start) onsite-",
            "tests/onsite_server/platform/test_install.py",
            ("verify_units", '"ExecStartPre"', '"ExecStart"')),
    Covered(r"^systemctl reload haproxy$", "tests/onsite_server/platform/test_nodes.py",
            ('["haproxy", "-f"',)),
    Covered(r"^set -a; \. /etc/onsite-wellness/onsite\.env; set \+a$", HERE, ("set -a",)),
    Covered(r"^runuser -u onsite -- \.venv/bin/onsite-server (doctor|create-site|create-user|"
            r"pairing-code) ", HERE, ('"doctor"', '"create-site"', '"create-user"',
                                      '"pairing-code"')),
    Covered(r"^runuser -u onsite -- \.venv/bin/onsite-server doctor$",
            "tests/onsite_server/platform/test_install.py", ('"runuser", "-u"', '"doctor"')),
    Covered(r"^ONSITE_BACKUP_PASSPHRASE='…' onsite-server backup --out ",
            "tests/onsite_server/platform/test_backup.py", ('"backup", "--out"',)),
    Covered(r"^ONSITE_BACKUP_PASSPHRASE='…' onsite-server restore ",
            "tests/onsite_server/platform/test_backup.py", ('"restore", str(backup_file)',)),
    Covered(r"^runuser -u onsite -- \.venv/bin/onsite-server upgrade$",
            "tests/onsite_server/platform/test_upgrade.py", ('"upgrade"',)),
    Covered(r"^\.venv/bin/onsite-server make-signing-keys --dir /etc/onsite-wellness/keys$",
            HERE, ('"make-signing-keys"',)),
    Covered(r"^\.venv/bin/onsite-server make-signing-keys --dir ",
            "tests/onsite_server/platform/test_nodes.py", ('"make-signing-keys"',)),
    Covered(r"^chown -R onsite: /etc/onsite-wellness/keys$", HERE, ("chown -R onsite: ",)),
    Covered(r"^runuser -u postgres -- (createuser --pwprompt|createdb --owner onsite) onsite$",
            HERE, ("test_the_postgresql_user_and_database_are_made_as_the_doc_says",)),
    Covered(r"^install -m 644 deploy/proxy/haproxy\.cfg /etc/haproxy/haproxy\.cfg$", HERE,
            ("haproxy.cfg",)),
    Covered(r"^haproxy -c -f /etc/haproxy/haproxy\.cfg$", HERE, ("doc(r'^haproxy -c ')",)),
    Covered(r"^useradd --create-home --groups video,input,render kiosk$", HERE, ('"useradd"',)),
    Covered(r"^install -D -m 644 (-o kiosk )?deploy/kiosk/", HERE, ('startswith("install -D")',)),
    Covered(r"^runuser -u kiosk -- env XDG_RUNTIME_DIR=/run/user/\$\(id -u kiosk\) systemctl "
            r"--user enable onsite-kiosk$", "tests/kiosk/test_watchdog.py",
            ("systemd-analyze", "WatchdogSec")),
    Covered(r"^update-grub && reboot$", HERE, ("consoleblank=0",)),
)


def test_every_command_is_exercised() -> None:
    commands = doc_commands(DOC.read_text(encoding="utf-8"))
    assert len(commands) > 30, commands  # the walk-throughs are all read
    unmatched = [c for c in commands if not any(re.search(e.pattern, c) for e in COVERAGE)]
    assert unmatched == [], f"commands in docs/deployment.md that no test exercises: {unmatched}"
    for entry in COVERAGE:
        assert any(re.search(entry.pattern, c) for c in commands), f"stale entry: {entry.pattern}"
        source = (ROOT / entry.by).read_text(encoding="utf-8")
        for proof in entry.proof:
            assert proof in source, f"{entry.by} does not run {entry.pattern!r} ({proof!r})"


def test_the_doc_commands_are_read_as_written() -> None:
    text = "```sh\nfoo --a \\\n  --b   # why\n# skip\n\nbar\n```\n```text\nnot me\n```\n" \
           "1. item\n\n   ```sh\n   baz\n   ```\n"
    assert doc_commands(text) == ["foo --a --b", "bar", "baz"]


def _run(command: str, env: dict[str, str], cwd: Path, stdin: str = ""
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-ec", command], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done


def _sandboxed(command: str, root: Path, checkout: Path) -> str:
    """The doc's command with its paths moved under root and this user for the service's."""
    me = getpass.getuser()
    out = command.replace("runuser -u onsite -- ", "").replace("/etc/", f"{root}/etc/")
    out = out.replace(".venv/bin/onsite-server", str(EXE))
    out = out.replace("/opt/onsite-wellness", str(checkout))
    out = out.replace("chown -R onsite:", f"chown -R {me}:")
    return out.replace("--create-user --user onsite", f"--prefix {root} --user {me}")


def test_the_safe_commands_run_in_a_sandbox(tmp_path: Path) -> None:
    commands = doc_commands(DOC.read_text(encoding="utf-8"))
    root = tmp_path / "root"
    checkout = tmp_path / "opt" / "onsite-wellness"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}

    # Every package named is one Debian 12 installs (the machine's apt lists). One apt-cache
    # for them all: each start reads the whole package cache (about 0.75 s of CPU).
    if shutil.which("apt-cache"):
        packages = sorted({package for c in commands if c.startswith("apt-get install")
                           for package in c.split()[3:]})
        assert packages
        said = subprocess.run(["apt-cache", "policy", *packages], capture_output=True,
                              text=True, check=False).stdout
        # One paragraph per package, each opened by an unindented "name:" line.
        policies = dict.fromkeys(packages, "")
        name = ""
        for line in said.splitlines():
            if line and not line[0].isspace():
                name = line.rstrip(":")
            elif name in policies:
                policies[name] += line + "\n"
        for package, policy in policies.items():
            assert "Candidate:" in policy and "(none)" not in policy, package

    # The clone, from this repository (what a site clones is what is committed).
    clone = next(c for c in commands if c.startswith("git clone"))
    assert clone.split()[4] == "/opt/onsite-wellness"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True,
                   capture_output=True, timeout=120)

    # A small site, as the doc walks it: install, the settings loaded with `set -a; .`,
    # the schema (the unit's ExecStartPre), doctor, the site and its coordinator, a code.
    def doc(pattern: str) -> str:
        matching = [c for c in commands if re.search(pattern, c)]
        assert matching, pattern
        return _sandboxed(matching[0], root, checkout)

    load = doc(r"^set -a; \. ")
    _run(doc(r"onsite-server install "), env, checkout)
    _run(f"{load}; {EXE} init-db", env, checkout)
    doctor = subprocess.run(["bash", "-c", f"{load}; {doc(r'onsite-server doctor$')} "
                             "--no-central --json"], env=env, cwd=checkout,
                            capture_output=True, text=True, timeout=180, check=False)
    checks = {c["name"]: c["ok"] for c in json.loads(doctor.stdout)["checks"]}
    assert checks["config"] and checks["migrations"] and checks["database-writes"], checks
    _run(f"{load}; {doc(r'onsite-server create-site ')}", env, checkout)
    _run(f"{load}; {doc(r'onsite-server create-user ')}", env, checkout,
         stdin="a long pass phrase 1\na long pass phrase 1\n")
    code = _run(f"{load}; {doc(r'onsite-server pairing-code ')}", env, checkout)
    assert re.fullmatch(r"[A-Z0-9-]{6,32}", code.stdout.strip().splitlines()[-1])

    # A large site's shared keys, made once and given to the service user.
    _run(doc(r"make-signing-keys --dir /etc/"), env, checkout)
    _run(doc(r"^chown -R onsite: "), env, checkout)
    assert {p.name.split("-")[0] for p in (root / "etc/onsite-wellness/keys").glob("*.pem")} \
        == {"advocate_link", "ticket"}

    # The proxy's file as the doc installs it, checked by HAProxy itself once its certificate
    # and nodes are filled in (test_nodes.py then runs it).
    (root / "etc/haproxy").mkdir(parents=True)  # as `apt-get install haproxy` leaves it
    _run(doc(r"^install -m 644 deploy/proxy/"), env, checkout)
    installed = root / "etc/haproxy/haproxy.cfg"
    if shutil.which("haproxy"):
        from onsite_server.tls import ensure_self_signed

        (tmp_path / "tls").mkdir(mode=0o700)
        cert, key = ensure_self_signed(tmp_path / "tls")
        pem = tmp_path / "proxy.pem"
        pem.write_bytes(cert.read_bytes() + key.read_bytes())
        installed.write_text(installed.read_text().replace(
            "/etc/onsite-wellness/tls/proxy.pem", str(pem)))
        _run(f"{doc(r'^haproxy -c ')}", env, checkout)

    # The kiosk's files where the doc installs them (the owner is the current user here).
    for command in (c for c in commands if c.startswith("install -D")):
        sandboxed = command.replace("-o kiosk ", "").replace("~kiosk", str(root / "home/kiosk"))
        _run(sandboxed.replace(" /etc/", f" {root}/etc/"), env, checkout)
    assert (root / "etc/systemd/system/getty@tty1.service.d/autologin.conf").read_text() == \
        (ROOT / "deploy/kiosk/autologin.conf").read_text()
    assert (root / "home/kiosk/.config/systemd/user/onsite-kiosk.service").exists()
    # What update-grub and the reboot are for: the kernel's console blanking off.
    assert "consoleblank=0" in DOC.read_text(encoding="utf-8")


def test_the_kiosk_user_is_created_as_the_doc_says(tmp_path: Path) -> None:
    useradd = next(c for c in doc_commands(DOC.read_text(encoding="utf-8"))
                   if c.startswith("useradd"))
    if shutil.which("useradd") is None or os.geteuid() != 0:
        pytest.skip("needs useradd as root")
    # Into a copy of this machine's account files (useradd --prefix), never the real ones.
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if Path("/etc", name).exists():
            shutil.copy2(Path("/etc", name), etc / name)
    group = (etc / "group").read_text()
    for missing in ("video", "input", "render"):  # udev makes them on a real Debian 12
        if f"\n{missing}:" not in "\n" + group:
            group += f"{missing}:x:{900 + len(group) % 50}:\n"
    (etc / "group").write_text(group)
    args = shlex.split(useradd)
    done = subprocess.run([args[0], "--prefix", str(tmp_path), *args[1:]], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "\nkiosk:" in "\n" + (etc / "passwd").read_text()
    members = {line.split(":")[0]: line.split(":")[3] for line in
               (etc / "group").read_text().splitlines() if line.count(":") == 3}
    assert all("kiosk" in members[g].split(",") for g in ("video", "input", "render"))


@pytest.mark.skipif(not os.environ.get("ONSITE_TEST_PG_URL"),
                    reason="needs the throwaway PostgreSQL cluster (scripts/test.sh)")
def test_the_postgresql_user_and_database_are_made_as_the_doc_says(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    cluster = make_url(os.environ["ONSITE_TEST_PG_URL"])
    # The doc's lines as the postgres user runs them, against the throwaway cluster.
    env = {**os.environ, "PGHOST": str(cluster.host), "PGPORT": str(cluster.port),
           "PGUSER": str(cluster.username)}
    made = [c.removeprefix("runuser -u postgres -- ")
            for c in doc_commands(DOC.read_text(encoding="utf-8"))
            if c.startswith("runuser -u postgres -- ")]
    assert [c.split()[0] for c in made] == ["createuser", "createdb"]
    try:
        for command in made:
            _run(command, env, tmp_path, stdin="site password\nsite password\n")
        url = cluster.set(username="onsite", password="site password", database="onsite")
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user, current_database()")).one() == \
                ("onsite", "onsite")
            conn.execute(text("CREATE TABLE owned_by_the_site (id int)"))  # it owns the database
            conn.commit()
        engine.dispose()
    finally:
        _run("dropdb --if-exists onsite; dropuser --if-exists onsite", env, tmp_path)
