"""`onsite-server backup` and `restore`: one encrypted file holding the database and the keys.

What goes in: the database (SQLite through its online backup API, a consistent copy taken
while kiosks keep writing; PostgreSQL as ``pg_dump`` custom format, also one snapshot), the QR
signing keys (tickets and advocate links already handed out must still verify after a
restore), the instance's secret key and TLS pair (kiosks pin the certificate), and a manifest.

The archive is encrypted with a key derived from ``BACKUP_PASSPHRASE`` (scrypt) in AES-GCM
chunks of 1 MiB; each chunk's nonce carries its number and the last one says it is last, so a
truncated, reordered or altered file is refused rather than half restored. Without the
passphrase a backup is unreadable, which is the point: it holds every member's answers.

Restore goes into an empty instance only (no tables in the database, no keys or secret in the
folder) unless ``--force``, so that a mistyped setting never overwrites a running site.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from .db import Database
from .instance import ensure_private_dir, open_private

MAGIC = b"ONSITE-BACKUP-1\n"
CHUNK = 1024 * 1024
# scrypt at 2^15: about 0.1 s and 32 MiB here, once per backup or restore.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_LENGTH = struct.Struct(">I")
# The instance files that make a restored site the same site, beside the database.
INSTANCE_FILES = ("secret_key", "tls_cert.pem", "tls_key.pem")


class BackupError(Exception):
    """The backup or restore cannot be done; the message says what to change."""


@dataclass(frozen=True)
class Target:
    """The instance a backup reads or a restore writes: its folder, database and key folder."""

    instance: Path
    database_url: str
    key_dir: Path

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite":
            return None
        return Path(url.database or "")


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode())


def _nonce(prefix: bytes, number: int) -> bytes:
    return prefix + number.to_bytes(4, "big")


def encrypt_file(source: Path, out: IO[bytes], passphrase: str) -> None:
    """Write source to out encrypted with the passphrase, in authenticated chunks."""
    salt, prefix = os.urandom(16), os.urandom(8)
    header = {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
              "salt": base64.b64encode(salt).decode(), "nonce_prefix":
              base64.b64encode(prefix).decode(), "cipher": "AES-256-GCM", "chunk": CHUNK}
    out.write(MAGIC + json.dumps(header).encode() + b"\n")
    aead = AESGCM(_key(passphrase, salt))
    size = source.stat().st_size
    with source.open("rb") as src:
        number = 0
        while True:
            block = src.read(CHUNK)
            last = src.tell() >= size
            sealed = aead.encrypt(_nonce(prefix, number), block, b"last" if last else b"more")
            out.write(_LENGTH.pack(len(sealed)) + sealed)
            number += 1
            if last:
                return


def decrypt_file(source: IO[bytes], dest: Path, passphrase: str) -> None:
    """Decrypt what encrypt_file wrote into dest; raise BackupError if anything is off."""
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupError("this is not an onsite-server backup file")
    try:
        header = json.loads(source.readline())
        salt = base64.b64decode(header["salt"])
        prefix = base64.b64decode(header["nonce_prefix"])
    except (ValueError, KeyError) as exc:
        raise BackupError("the backup file's header is damaged") from exc
    aead = AESGCM(_key(passphrase, salt))
    with dest.open("wb") as out:
        number = 0
        while True:
            raw = source.read(_LENGTH.size)
            if len(raw) < _LENGTH.size:
                raise BackupError("the backup file is truncated (its last part is missing)")
            length = _LENGTH.unpack(raw)[0]
            sealed = source.read(length)
            if len(sealed) < length:
                raise BackupError("the backup file is truncated (a part is cut short)")
            for marker in (b"more", b"last"):
                try:
                    block = aead.decrypt(_nonce(prefix, number), sealed, marker)
                except InvalidTag:
                    continue
                out.write(block)
                break
            else:
                raise BackupError("the passphrase is wrong, or the backup file was altered")
            number += 1
            if marker == b"last":
                if source.read(1):
                    raise BackupError("the backup file has data after its end")
                return


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not versions:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)")
    return str(versions[-1])


def _libpq_url(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextmanager
def _private_tempdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="onsite-backup-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _dump_database(target: Target, dest: Path) -> str:
    sqlite_path = target.sqlite_path
    if sqlite_path is not None:
        if not sqlite_path.exists():
            raise BackupError(f"there is no database at {sqlite_path}")
        out = dest / "database.sqlite"
        source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        copy = sqlite3.connect(out)
        try:
            # One step (pages=-1) reads under one read transaction: a consistent snapshot,
            # and in WAL mode the kiosks' writers are not held up meanwhile.
            source.backup(copy, pages=-1)
        finally:
            copy.close()
            source.close()
        return "sqlite"
    done = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner",
                           "--file", str(dest / "database.pgdump"),
                           "--dbname", _libpq_url(target.database_url)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    return "postgresql"


def backup(target: Target, out: Path, passphrase: str | None, *,
           revision: str | None) -> dict[str, Any]:
    """Write an encrypted backup of target to out; return its manifest."""
    if not passphrase:
        raise BackupError("set BACKUP_PASSPHRASE (ONSITE_BACKUP_PASSPHRASE): a backup holds "
                          "members' health answers and is always encrypted")
    with _private_tempdir() as work:
        stage = work / "stage"
        stage.mkdir(mode=0o700)
        manifest: dict[str, Any] = {"format": 1, "created_at": datetime.now(UTC).isoformat(),
                                    "revision": revision,
                                    "database": _dump_database(target, stage)}
        if target.key_dir.is_dir():
            shutil.copytree(target.key_dir, stage / "keys")
        manifest["keys"] = sorted(p.name for p in (stage / "keys").glob("*.pem")) \
            if (stage / "keys").is_dir() else []
        manifest["instance_files"] = []
        for name in INSTANCE_FILES:
            if (target.instance / name).exists():
                shutil.copy2(target.instance / name, stage / name)
                manifest["instance_files"].append(name)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
        archive = work / "backup.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(stage, arcname="backup")
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with os.fdopen(open_private(partial, os.O_WRONLY | os.O_TRUNC), "wb") as handle:
            encrypt_file(archive, handle, passphrase)
            handle.flush()
            os.fsync(handle.fileno())
        # Only a whole backup ever carries the name asked for.
        partial.replace(out)
    return manifest


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` scheduled backups in folder; return what went."""
    # The names sort by time (onsite-YYYYmmddTHHMMSSffffffZ.bak); other files are never touched.
    found = sorted(folder.glob("onsite-*.bak"))
    gone = found[:-keep] if keep else found
    for path in gone:
        path.unlink()
    return gone


def _database_has_tables(database: Database) -> bool:
    assert database.engine is not None
    return bool(inspect(database.engine).get_table_names())


def _instance_has_data(target: Target) -> list[str]:
    found = [name for name in INSTANCE_FILES if (target.instance / name).exists()]
    if target.key_dir.is_dir() and any(target.key_dir.glob("*.pem")):
        found.append(str(target.key_dir))
    return found


def restore(target: Target, database: Database, source: Path, passphrase: str | None, *,
            force: bool = False) -> dict[str, Any]:
    """Restore a backup into target; refuse a non-empty one unless force. Return the manifest."""
    if not passphrase:
        raise BackupError("set BACKUP_PASSPHRASE (ONSITE_BACKUP_PASSPHRASE) to the passphrase "
                          "the backup was made with")
    if not source.is_file():
        raise BackupError(f"there is no backup file at {source}")
    occupied = _instance_has_data(target)
    if _database_has_tables(database):
        occupied.append("the database has tables")
    if occupied and not force:
        raise BackupError("the instance is not empty (" + "; ".join(occupied) + "): restore "
                          "into a new instance, or pass --force to replace it")
    with _private_tempdir() as work:
        archive = work / "backup.tar.gz"
        with source.open("rb") as handle:
            decrypt_file(handle, archive, passphrase)
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(work, filter="data")
            else:
                # Python before 3.11.4 (Debian 12's 3.11.2) has no extraction filters; the
                # archive was authenticated by its passphrase, and its names are checked here.
                for member in tar.getmembers():
                    if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts \
                            or not (member.isfile() or member.isdir()):
                        raise BackupError(f"the backup holds an unexpected entry {member.name!r}")
                tar.extractall(work)
        stage = work / "backup"
        manifest: dict[str, Any] = json.loads((stage / "manifest.json").read_text())
        _restore_database(target, database, stage, manifest["database"], force=force)
        ensure_private_dir(target.instance)
        if (stage / "keys").is_dir():
            ensure_private_dir(target.key_dir)
            # The retired key ids too: a retired (compromised) key must stay refused.
            for key in [*(stage / "keys").glob("*.pem"), *(stage / "keys").glob("retired.json")]:
                _copy_private(key, target.key_dir / key.name)
        for name in manifest.get("instance_files", []):
            _copy_private(stage / name, target.instance / name)
    return manifest


def _copy_private(source: Path, dest: Path) -> None:
    with os.fdopen(open_private(dest, os.O_WRONLY | os.O_TRUNC), "wb") as out:
        out.write(source.read_bytes())
    # The keys' order (newest signs) is their modification time: keep it.
    stat = source.stat()
    os.utime(dest, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _restore_database(target: Target, database: Database, stage: Path, kind: str, *,
                      force: bool) -> None:
    sqlite_path = target.sqlite_path
    if kind == "sqlite":
        if sqlite_path is None:
            raise BackupError("this backup holds a SQLite database; the configured database "
                              "is PostgreSQL (restore into a SQLite instance, then migrate "
                              "the data)")
        database.dispose()
        copy = sqlite3.connect(stage / "database.sqlite")
        dest = sqlite3.connect(sqlite_path)
        try:
            # The backup API writes into the live file with its own locking, so a database
            # that exists (the --force case) is replaced whole, WAL included.
            copy.backup(dest, pages=-1)
        finally:
            dest.close()
            copy.close()
        os.chmod(sqlite_path, 0o600)
        return
    if sqlite_path is not None:
        raise BackupError("this backup holds a PostgreSQL database; the configured database "
                          "is SQLite")
    database.dispose()
    args = [_pg_tool("pg_restore"), "--no-owner", "--exit-on-error",
            "--dbname", _libpq_url(target.database_url)]
    if force:
        args += ["--clean", "--if-exists"]
    done = subprocess.run([*args, str(stage / "database.pgdump")], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[-500:]}")
