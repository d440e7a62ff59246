"""Reports for the employer: aggregate tables and charts with small cells suppressed, and CSV.

Admins and coordinators only. Every number comes from ``services.reports`` with suppression
already decided over the whole report; this module only lays it out. Nothing here writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..db import get_session
from ..models import Site
from ..services import reports as reports_service
from ..services.errors import ServiceError
from ..services.reports import EmployerReport, ReportTable, label
from ..services.suppression import LOWEST_MINIMUM, TOTAL
from . import bp
from .auth import role_required
from .charts import Bar, bar_chart
from .forms import ReportForm
from .i18n import refusal, select_locale
from .lookup import current_site
from .nav import add_nav

add_nav("dashboard.reports", _l("Reports"), ("admin", "coordinator"), order=60)

# The service's field names, and the form's.
_FIELDS = {"from": "start", "to": "end", "min_cell": "start", "timezone": "start"}


def minimum_cell(site: Site) -> int:
    """The site's minimum cell size if it sets one (never below 5), else the server's."""
    own = (site.settings or {}).get("min_cell")
    if isinstance(own, int) and not isinstance(own, bool) and own >= LOWEST_MINIMUM:
        return own
    return int(current_app.config["MIN_CELL"])


def _default_period() -> tuple[str, str]:
    now = datetime.now(UTC)
    back = now.year * 12 + now.month - 1 - 2
    return f"{back // 12:04d}-{back % 12 + 1:02d}", f"{now.year:04d}-{now.month:02d}"


def _form() -> ReportForm:
    start, end = _default_period()
    data = {"start": request.args.get("start") or start, "end": request.args.get("end") or end}
    return ReportForm(formdata=None, data=data, meta={"csrf": False})


def _build(form: ReportForm) -> EmployerReport | None:
    """Validate the form and build the report, or put the errors next to the fields."""
    if not form.validate():
        return None
    site = current_site()
    try:
        return reports_service.employer_report(
            get_session(), first_month=form.start.data.strip(), last_month=form.end.data.strip(),
            site_id=site.id, minimum=minimum_cell(site), timezone=site.timezone)
    except ServiceError as exc:
        for err in exc.errors:
            getattr(form, _FIELDS.get(err["field"], "start")).errors.append(
                refusal(err["message"]))
        return None


@bp.get("/reports")
@role_required("admin", "coordinator")
def reports() -> Any:
    """The employer report for a period: tables, charts and CSV links."""
    form = _form()
    report = _build(form)
    lang = select_locale()
    charts = _charts(report, lang) if report is not None else {}
    status = 200 if report is not None or not request.args else 422
    return render_template("reports/index.html", form=form, report=report, charts=charts,
                           lang=lang, TOTAL=TOTAL, label=label,
                           minimum=minimum_cell(current_site())), status


@bp.get("/reports/<table_id>.csv")
@role_required("admin", "coordinator")
def report_csv(table_id: str) -> Any:
    """One table of the report as CSV, suppression applied (the same cells as the page)."""
    form = _form()
    report = _build(form)
    if report is None:
        problems = "; ".join(f"{field.label.text}: {error}"
                             for field in form for error in field.errors)
        abort(Response(_("This report period cannot be used: %(problems)s",
                         problems=problems) + "\n", 422, mimetype="text/plain"))
    try:
        table = report.table(table_id)
    except KeyError:
        abort(404)
    body = reports_service.table_csv(report, table, select_locale(),
                                     hidden_mark=_("suppressed"), total_label=_("Total"))
    name = f"report-{table_id}-{report.first_month}-{report.last_month}.csv"
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


def _count_text(value: int | None, whole: int | None = None) -> str:
    if value is None:
        return str(_("suppressed (too few people to show)"))
    if whole:
        return str(_("%(share)s%% (%(count)s people)", share=round(100 * value / whole),
                     count=value))
    return str(_("%(count)s people", count=value))


def _charts(report: EmployerReport, lang: str) -> dict[str, Any]:
    """One chart per table where a chart says more than the table."""
    out: dict[str, Any] = {}
    screenings = report.table("screenings")
    out["screenings"] = bar_chart(
        "chart-screenings", _("People screened per instrument"),
        [Bar(label(screenings.row_labels[row], lang), v, _count_text(v))
         for row in screenings.table.rows
         for v in [report.shown(screenings, row, reports_service.PEOPLE)]],
        description=_("No screenings in this period."))
    for table in report.tables:
        if table.kind == "outcome":
            out[table.id] = _outcome_chart(report, table, lang)
    events = report.table("events")
    out["events"] = bar_chart(
        "chart-events", _("People checked in per event"),
        [Bar(label(events.row_labels[row], lang), v, _count_text(v))
         for row in events.table.rows for v in [report.shown(events, row, "checked_in")]],
        description=_("No events in this period."))
    day_hour = report.table("day_hour")
    out["hours"] = bar_chart(
        "chart-hours", _("Visits by hour of the day"),
        [Bar(label(day_hour.col_labels[col], lang), v, _count_text(v))
         for col in day_hour.table.cols for v in [report.shown(day_hour, TOTAL, col)]],
        description=_("No visits in this period."))
    return out


def _outcome_chart(report: EmployerReport, table: ReportTable, lang: str) -> Any:
    people = reports_service.PEOPLE
    whole = report.shown(table, TOTAL, people)
    title = label(table.title or {}, lang)
    return bar_chart(
        f"chart-{table.id}", _("%(instrument)s: share of people screened", instrument=title),
        [Bar(label(table.row_labels[row], lang), v, _count_text(v, whole))
         for row in table.table.rows for v in [report.shown(table, row, people)]],
        scale=whole, description=title)
