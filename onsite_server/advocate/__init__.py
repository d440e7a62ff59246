"""The onsite advocates' view (HTML): their own members' referrals only."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("advocate", __name__, url_prefix="/advocate", template_folder="templates")
