"""The coordinators' dashboard (HTML)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")


@bp.get("/")
def index() -> str:
    """The dashboard landing page."""
    return render_template("dashboard/index.html")
