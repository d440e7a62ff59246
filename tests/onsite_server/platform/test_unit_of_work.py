"""The request is the unit of work: the boundary commits, views never do (issue 17 §5)."""

from __future__ import annotations

from flask import Flask, abort
from sqlalchemy import func, select

from onsite_server.db import get_db, get_session, keep_on_refusal
from onsite_server.models import AuditLog


def _route(app: Flask) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # a bare test route, not a dashboard form

    @app.post("/_test/write/<outcome>")
    def write(outcome: str) -> str:
        get_session().add(AuditLog(actor="test", action=f"test.{outcome}"))
        if outcome.startswith("kept"):
            keep_on_refusal()
        if outcome.endswith("refused"):
            abort(409)
        if outcome.endswith("broken"):
            raise RuntimeError("a bug after the write")
        return "ok"


def _written(app: Flask, outcome: str) -> int:
    with get_db(app).transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == f"test.{outcome}")) or 0)


def test_a_refusal_rolls_back_unless_the_writes_are_kept(app: Flask) -> None:
    _route(app)
    client = app.test_client()
    resp = client.post("/_test/write/accepted")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert client.post("/_test/write/refused").status_code == 409
    assert client.post("/_test/write/kept-refused").status_code == 409
    assert _written(app, "accepted") == 1
    assert _written(app, "refused") == 0
    assert _written(app, "kept-refused") == 1


def test_kept_writes_still_roll_back_on_a_server_error(app: Flask) -> None:
    _route(app)
    client = app.test_client()
    assert client.post("/_test/write/kept-broken").status_code == 500
    assert _written(app, "kept-broken") == 0


def _commits_in_views() -> list[str]:
    """Every ``….commit()`` call in the API, dashboard and advocate views, as path:line."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "onsite_server"
    found = []
    for area in ("api", "dashboard", "advocate"):
        for path in sorted((root / area).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "commit"):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_view_commits() -> None:
    # Writes that must stand although the answer is a refusal are kept by the boundary
    # (keep_on_refusal) or committed by the service in a transaction of its own (identify).
    assert _commits_in_views() == []
