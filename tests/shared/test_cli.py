"""The scoring command line, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.assessments.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run python -m shared.assessments with args from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "shared.assessments", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def error_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Check a bad-input exit and return the JSON error from stderr."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    err: dict[str, Any] = json.loads(proc.stderr)
    assert set(err) == {"error", "field"} and err["error"]
    return err


def test_score_prints_one_json_object() -> None:
    answers = {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2, "7": 2, "8": 2, "9": 1}
    proc = run("score", "phq9", json.dumps(answers))
    assert proc.returncode == 0, proc.stderr
    # 8 x 2 + 1 = 17: moderately severe (15-19); >= 10 positive; item 9 >= 1 flagged
    # (Kroenke 2001, J Gen Intern Med 16:606).
    assert json.loads(proc.stdout) == {
        "instrument": "phq9",
        "version": "1.1.0",
        "total": 17,
        "band": "moderately_severe",
        "flags": ["item9_positive", "positive_screen"],
    }
    assert proc.stdout.count("\n") == 1


def test_score_with_version_and_stdin() -> None:
    # WHO-5 raw 13 x 4 = 52%, above the <= 50 cut-off (Topp 2015, Psychother Psychosom 84:167).
    answers = '{"1": 3, "2": 3, "3": 3, "4": 2, "5": 2}'
    proc = run("score", "who5", "-", "--version", "1.0.0", stdin=answers)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["total"], out["band"], out["flags"]) == (52, "adequate", [])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("score", "phq2", '{"1": 1'), "answers"),
        (("score", "phq2", "not json"), "answers"),
        (("score", "phq2", "[1, 2]"), "answers"),
        (("score", "phq2", '{"1": 1, "2": 4}'), "2"),
        (("score", "phq2", '{"1": true, "2": 0}'), "1"),
        (("score", "phq2", '{"1": 1.0, "2": 0}'), "1"),
        (("score", "phq2", '{"1": 1}'), "2"),
        (("score", "phq2", '{"1": 1, "2": 0, "3": 0}'), "3"),
        (("score", "audit_c", '{"1": 2, "2": 1, "3": 0}'), "sex"),
        (("score", "nope", "{}"), "instrument_id"),
        (("score", "phq2", '{"1": 0, "2": 0}', "--version", "9.0.0"), "instrument_id"),
        (("score", "phq2"), "argv"),
        (("frobnicate",), "argv"),
    ],
)
def test_bad_input_is_json_on_stderr_exit_2(args: tuple[str, ...], field: str) -> None:
    assert error_of(run(*args))["field"] == field


def test_list() -> None:
    proc = run("list")
    assert proc.returncode == 0, proc.stderr
    rows = {row["instrument"]: row for row in json.loads(proc.stdout)}
    for iid in ("phq2", "who5"):
        assert rows[iid]["current"] == "1.0.0"
        assert rows[iid]["versions"] == ["1.0.0"]
    # 1.1.0: the codes of each question's own LOINC answer list (docs/instruments.md).
    for iid in ("phq9", "gad7", "gad2", "audit_c"):
        assert rows[iid]["current"] == "1.1.0"
        assert rows[iid]["versions"] == ["1.0.0", "1.1.0"]


def test_demo_scores_a_checkup() -> None:
    proc = run("demo")
    out = json.loads(proc.stdout)
    # PHQ-2 2+1 = 3 is positive (Kroenke 2003); AUDIT-C 2+1+1 = 4 is positive for a man
    # (Bradley 2007); WHO-5 raw 11 -> 44% is poor wellbeing (Topp 2015).
    assert out["results"]["phq2"]["band"] == "positive"
    assert out["results"]["audit_c"]["flags"] == ["positive_screen"]
    assert out["results"]["who5"]["total"] == 44
    if "errors" in out:
        # Only instruments that are not installed yet may be missing; nothing else may fail.
        assert proc.returncode == 1
        assert {e["field"] for e in out["errors"].values()} == {"instrument_id"}
    else:
        assert proc.returncode == 0, proc.stderr
        assert set(out["results"]) >= {"bmi", "blood_pressure", "ada_risk"}


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "gad2", '{"1": 2, "2": 1}']) == 0
    out = json.loads(capsys.readouterr().out)
    # GAD-2 >= 3 is a positive screen (Kroenke 2007, Ann Intern Med 146:317).
    assert (out["total"], out["band"], out["flags"]) == (3, "positive", ["positive_screen"])
    assert main(["score", "gad2", '{"1": 2}']) == 2
    assert json.loads(capsys.readouterr().err)["field"] == "2"


def test_demo_text_names_the_one_referral() -> None:
    """The run command's plain-language demo shows results and one consolidated referral."""
    proc = subprocess.run(
        [sys.executable, "-m", "shared.assessments", "demo", "--text"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "One referral to the member's advocate, priority" in proc.stdout
    assert "Blood pressure: 138/86" in proc.stdout
    assert "Next screeners to offer: phq9" in proc.stdout
