"""The instance folder and the private files in it: the folder 0700, every file 0600.

The folder holds the database (member roster, health answers), the secret key, the signing key
and the TLS key, so nobody but the server's own user may read or even list it. Files are
created with their final mode (``os.open`` with a mode) rather than chmod-ed afterwards, so
there is no moment in which another user could open them. Anything that adds a file to the
folder writes it with ``write_private`` (the QR signing keys in ``keys/`` are made 0600 by
``services.signing`` in a 0700 folder of their own).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_dir(path: str | Path) -> Path:
    """Create the folder 0700 (parents as usual); tighten it if it exists and others can enter."""
    folder = Path(path)
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    info = folder.stat()
    # An instance folder made by an older version (or by hand) may be 0755; closing it also
    # closes the files made then at 0644, since nobody else can reach them through it.
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        log.warning("instance folder %s was readable by others (mode %o); setting it to 0700",
                    folder, stat.S_IMODE(info.st_mode))
        folder.chmod(DIR_MODE)
    return folder


def open_private(path: str | Path, flags: int = os.O_WRONLY) -> int:
    """Open path with flags, creating it 0600 if missing; return the file descriptor."""
    # os.open applies the mode only when it creates the file, and the umask can only remove
    # bits from 0600, so a new file is never readable by others.
    return os.open(path, flags | os.O_CREAT, FILE_MODE)


def touch_private(path: str | Path) -> None:
    """Create path as an empty 0600 file if it does not exist (an existing file is not opened)."""
    # O_EXCL never opens an existing file, which matters for a database: closing any descriptor
    # of a file drops every POSIX lock this process holds on it, SQLite's included.
    try:
        os.close(open_private(path, os.O_WRONLY | os.O_EXCL))
    except FileExistsError:
        pass


def write_private(path: str | Path, data: bytes) -> None:
    """Write data to path, creating it 0600 (an existing file is replaced in place)."""
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
