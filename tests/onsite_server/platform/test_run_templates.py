"""The run's migrated templates (tests/onsite_server/run_templates.py): made once for all the
xdist workers of a run, by whichever asks first, and per process without xdist."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ..run_templates import made_once, made_once_per_run


def test_processes_asking_at_once_share_one_making(tmp_path: Path) -> None:
    """Four askers at once (each its own open file, as each worker has): one make, one answer."""
    made: list[int] = []
    answers: list[str] = []

    def make() -> str:
        made.append(1)
        time.sleep(0.2)  # long enough that the others ask while it is being made
        return f"template {len(made)}"

    def ask() -> None:
        answers.append(made_once(tmp_path / "t", make))

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert len(made) == 1
    assert answers == ["template 1"] * 4


def test_a_making_that_fails_leaves_nothing_and_the_next_asker_makes_it(tmp_path: Path) -> None:
    """A worker that fails while migrating does not leave the others a half-made template."""
    def fail() -> str:
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError):
        made_once(tmp_path / "t", fail)
    assert made_once(tmp_path / "t", lambda: "made again") == "made again"
    assert made_once(tmp_path / "t", lambda: "not asked") == "made again"


def _config(workerinput: dict[str, str] | None) -> pytest.Config:
    config = SimpleNamespace() if workerinput is None else SimpleNamespace(workerinput=workerinput)
    return cast(pytest.Config, config)


class _Factory:
    """A worker's TempPathFactory: its base folder inside the run's."""

    def __init__(self, run: Path, worker: str) -> None:
        self.base = run / worker
        self.base.mkdir(parents=True, exist_ok=True)

    def getbasetemp(self) -> Path:
        return self.base

    def mktemp(self, name: str) -> Path:
        raise AssertionError("a worker makes the run's template in the run's folder")


def test_the_workers_of_one_run_share_it_and_another_run_makes_its_own(tmp_path: Path) -> None:
    """Keyed by the run's id: a later run in the same --basetemp migrates afresh."""
    folders: list[Path] = []

    def make(folder: Path) -> str:
        folders.append(folder)
        (folder / "template.sqlite").write_text("migrated")
        return str(folder / "template.sqlite")

    def ask(run: str, worker: str) -> str:
        factory = cast(Any, _Factory(tmp_path, worker))
        return made_once_per_run(_config({"testrunuid": run}), factory, "sqlite-template", make)

    first = ask("run1", "gw0")
    assert ask("run1", "gw1") == first
    assert ask("run1", "gw3") == first
    assert len(folders) == 1 and folders[0].parent == tmp_path
    assert Path(first).read_text() == "migrated"
    assert ask("run2", "gw0") != first
    assert len(folders) == 2


def test_without_xdist_each_process_makes_its_own(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """No workers, no lock: the template is made in the process's own temporary folder."""
    made: list[Path] = []

    def make(folder: Path) -> str:
        made.append(folder)
        return str(folder)

    first = made_once_per_run(_config(None), tmp_path_factory, "t", make)
    second = made_once_per_run(_config(None), tmp_path_factory, "t", make)
    assert first != second and len(made) == 2
    assert made[0].parent == tmp_path_factory.getbasetemp()
