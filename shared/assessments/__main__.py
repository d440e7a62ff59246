"""Command line for the screening engine: score, list, demo (console script onsite-score)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

from shared.assessments import (
    ScoreResult,
    ScoringError,
    list_instruments,
    load_definition,
    score,
)
from shared.assessments.engine import available_versions
from shared.triage import ReferralProposal, triage

EXIT_BAD_INPUT = 2

# A plausible check-up at a kiosk: a few short screeners plus vitals.
DEMO_CHECKUP: dict[str, dict[str, object]] = {
    "phq2": {"1": 2, "2": 1},
    "gad2": {"1": 1, "2": 1},
    "who5": {"1": 2, "2": 3, "3": 2, "4": 1, "5": 3},
    "audit_c": {"1": 2, "2": 1, "3": 1, "sex": "male"},
    "bmi": {"height_cm": 178, "weight_kg": 92},
    "blood_pressure": {"systolic": 138, "diastolic": 86},
    "ada_risk": {
        "age": 52,
        "sex": "male",
        "family_history": True,
        "high_blood_pressure": False,
        "physically_active": False,
        "height_cm": 178,
        "weight_kg": 92,
    },
}


class _BadInput(Exception):
    """Bad input on the command line; main() reports it and exits 2."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _fail(message: str, field: str) -> NoReturn:
    """Abort the command with a bad-input report."""
    raise _BadInput(message, field)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are JSON too, so callers parse one format."""

    def error(self, message: str) -> NoReturn:
        """Report a usage error the same way as any other bad input."""
        _fail(message, "argv")


def _build_parser() -> argparse.ArgumentParser:
    """Describe the sub-commands."""
    parser = _Parser(prog="onsite-score", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p_score = sub.add_parser("score", help="score one instrument from a JSON object of answers")
    p_score.add_argument("instrument_id")
    p_score.add_argument("answers", help="JSON object of answers, or - to read it from stdin")
    p_score.add_argument("--version", dest="instrument_version", default=None)
    sub.add_parser("list", help="list instruments and their versions")
    p_demo = sub.add_parser("demo", help="score a sample check-up and show the triage proposal")
    p_demo.add_argument("--text", action="store_true", help="plain language instead of JSON")
    return parser


def _cmd_score(instrument_id: str, raw_answers: str, version: str | None) -> int:
    """Score and print one result."""
    text = sys.stdin.read() if raw_answers == "-" else raw_answers
    try:
        answers = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"answers are not valid JSON: {exc}", "answers")
    try:
        result = score(instrument_id, answers, version)
    except ScoringError as exc:
        _fail(exc.message, exc.field)
    print(json.dumps(result.as_dict()))
    return 0


def _cmd_list() -> int:
    """Print every instrument with its current and available versions."""
    rows = [
        {"instrument": iid, "current": current, "versions": available_versions(iid)}
        for iid, current in list_instruments()
    ]
    print(json.dumps(rows, indent=2))
    return 0


def _cmd_demo(text: bool = False) -> int:
    """Score the sample check-up and print results and the triage proposal."""
    results: dict[str, ScoreResult] = {}
    errors: dict[str, dict[str, str]] = {}
    for iid, answers in DEMO_CHECKUP.items():
        try:
            results[iid] = score(iid, answers)
        except ScoringError as exc:
            errors[iid] = {"error": exc.message, "field": exc.field}
    out: dict[str, Any] = {
        "answers": DEMO_CHECKUP,
        "results": {iid: r.as_dict() for iid, r in results.items()},
    }
    if errors:
        out["errors"] = errors
    proposal = triage(results)
    out["proposal"] = proposal.as_dict()
    if text:
        print(_demo_text(results, proposal, errors))
    else:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 1 if errors else 0


def _demo_text(
    results: Mapping[str, ScoreResult], proposal: ReferralProposal,
    errors: Mapping[str, Mapping[str, str]],
) -> str:
    """Render the demo as plain language for a person at a terminal."""
    lines = ["Results:"]
    for iid, result in results.items():
        definition = load_definition(iid, result.version)
        labels = {b["id"]: b["label"]["en"] for b in definition["scoring"]["bands"]}
        total = f" {result.total}"
        if result.total is None:
            answers = DEMO_CHECKUP.get(iid, {})
            total = f" {answers.get('systolic')}/{answers.get('diastolic')}" if iid == \
                "blood_pressure" else ""
        title = definition["title"]["en"]
        lines.append(f"  {title}:{total} - {labels.get(result.band, result.band)}")
    for iid, err in errors.items():
        lines.append(f"  {iid}: not scored ({err['field']}: {err['error']})")
    lines.append("")
    if not proposal.needs_referral:
        lines.append("Referral: none needed.")
    else:
        lines.append(f"One referral to the member's advocate, priority {proposal.priority}:")
        lines.append("  programs: " + ", ".join(p.replace("_", " ") for p in proposal.programs))
        for reason in proposal.reasons:
            lines.append(f"  - {reason.text['en']}")
    if proposal.next_screeners:
        lines.append("Next screeners to offer: " + ", ".join(proposal.next_screeners))
    for guidance in proposal.crisis:
        lines.append(f"CRISIS ({guidance.trigger}): {guidance.text['en']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    try:
        args = _build_parser().parse_args(argv)
        if args.command == "score":
            return _cmd_score(args.instrument_id, args.answers, args.instrument_version)
        if args.command == "list":
            return _cmd_list()
        return _cmd_demo(text=args.text)
    except _BadInput as exc:
        sys.stderr.write(json.dumps({"error": exc.message, "field": exc.field}) + "\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
