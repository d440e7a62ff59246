"""The onsite advocates' view (HTML): their own members' referrals only."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l

from ..dashboard.auth import role_required
from ..dashboard.nav import add_nav

bp = Blueprint("advocate", __name__, url_prefix="/advocate", template_folder="templates")

add_nav("advocate.index", _l("My referrals"), ("advocate",), order=5)


@bp.get("/")
@role_required("advocate")
def index() -> str:
    """The referrals of the logged-in advocate's members at this site."""
    return render_template("advocate/index.html", referrals=[])
