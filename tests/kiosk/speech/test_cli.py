"""``onsite-kiosk --read-aloud``: only with the tour, and only where espeak-ng is installed."""

from __future__ import annotations

import pytest

from kiosk import cli


def test_read_aloud_without_espeak_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    monkeypatch.setattr(cli.shutil, "which", lambda _name: None)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--tour", "unused", "--read-aloud"])
    assert exited.value.code == 2
    assert "install the Debian package espeak-ng" in capsys.readouterr().err


def test_read_aloud_goes_with_the_tour(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--read-aloud"])
    assert "--read-aloud goes with --tour" in capsys.readouterr().err
