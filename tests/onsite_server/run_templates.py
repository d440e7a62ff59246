"""One migrated template per backend for a whole test run, shared by its xdist workers.

Each worker used to migrate its own SQLite file and its own PostgreSQL database: with four
workers, four migrations per backend and run (about 1 s of CPU each on SQLite, 2–3 s on
PostgreSQL plus the cluster's work; docs/BENCHMARKS.md, "Session 11: the tests' CPU"). Now
the first worker to take the run's lock makes the template and writes down where it is; the
others wait for the lock and reuse it. Nothing changes a template once made: SQLite copies
are file copies, and PostgreSQL copies it while no session is connected to it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest


def made_once(stem: Path, make: Callable[[], str]) -> str:
    """What make() returned, called by the first process to ask for stem; the rest wait.

    stem names the lock file (stem + ".lock") and the record of the answer (stem + ".made").
    A process that dies while making it leaves no record, and the next one makes it again.
    """
    record = stem.with_name(stem.name + ".made")
    with open(stem.with_name(stem.name + ".lock"), "a") as lock:
        # The lock goes with the file: closed, or the process gone, and the next one has it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.exists():
            return record.read_text()
        answer = make()
        part = stem.with_name(f"{stem.name}.made.{os.getpid()}")
        part.write_text(answer)
        os.replace(part, record)  # never seen half written
        return answer


def made_once_per_run(config: pytest.Config, factory: pytest.TempPathFactory, what: str,
                      make: Callable[[Path], str]) -> str:
    """make(folder) once for the whole run under xdist (its workers share it), else per process.

    make gets a new empty folder for any files it writes. The workers of one run share the
    folder above their own base temporary folders; the run's id (``PYTEST_XDIST_TESTRUNUID``)
    keeps a later run in a reused --basetemp apart.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return make(factory.mktemp(what))
    shared = factory.getbasetemp().parent
    stem = shared / f"{what}-{workerinput['testrunuid']}"
    return made_once(stem, lambda: make(Path(tempfile.mkdtemp(prefix=stem.name + "-",
                                                              dir=shared))))
