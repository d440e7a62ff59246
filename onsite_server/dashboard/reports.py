"""Reports for the employer: aggregate tables and charts with small cells suppressed, CSV, PDF.

Admins and coordinators read their site's; an ``employer`` account reads every site of its
employer and nothing else (services/scope.py ``report_site``). Every number comes from
``services.reports`` with suppression already decided over the whole report; this module only
lays it out. Nothing here writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Response, abort, current_app, render_template, request
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from ..db import get_session
from ..models import Site
from ..services import reports as reports_service
from ..services import scope as scope_service
from ..services.errors import ServiceError
from ..services.reports import EmployerReport, ReportTable, label
from ..services.spreadsheet import for_excel
from ..services.suppression import LOWEST_MINIMUM, TOTAL
from . import bp
from .auth import current_user, role_required
from .charts import Bar, bar_chart
from .forms import ReportForm
from .i18n import attach_errors, select_locale
from .lookup import current_site
from .nav import add_nav

if TYPE_CHECKING:
    from ..services import report_pdf as pdf_service

REPORT_ROLES = ("admin", "coordinator", "employer")
add_nav("dashboard.reports", _l("Reports"), REPORT_ROLES, order=60)

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


def _sites() -> list[Site]:
    """The sites whose reports this user may read (the service decides, by role)."""
    user = current_user()
    assert user is not None  # role_required ran
    try:
        return scope_service.report_sites(get_session(), user.role, current_site().id)
    except ServiceError:
        abort(404)


def report_site() -> Site:
    """The site the report is asked for (``?site=<slug>``), if the user may read it; else 404."""
    user = current_user()
    assert user is not None
    try:
        return scope_service.report_site(get_session(), user.role, current_site().id,
                                         request.args.get("site") or None)
    except ServiceError:
        abort(404)


def _form() -> ReportForm:
    start, end = _default_period()
    site = report_site()
    data = {"start": request.args.get("start") or start, "end": request.args.get("end") or end,
            "site": site.slug}
    form = ReportForm(formdata=None, data=data, meta={"csrf": False})
    form.site.choices = [SelectChoice(s.slug, s.name) for s in _sites()]
    return form


def _build(form: ReportForm) -> EmployerReport | None:
    """Validate the form and build the report, or put the errors next to the fields."""
    if not form.validate():
        return None
    site = report_site()
    try:
        return reports_service.employer_report(
            get_session(), first_month=form.start.data.strip(), last_month=form.end.data.strip(),
            site_id=site.id, minimum=minimum_cell(site), timezone=site.timezone)
    except ServiceError as exc:
        attach_errors(form, exc, fields=_FIELDS, default="start")
        return None


@bp.get("/reports")
@role_required(*REPORT_ROLES)
def reports() -> Any:
    """The employer report for a period: tables, charts, CSV and PDF links."""
    form = _form()
    report = _build(form)
    lang = select_locale()
    charts = _charts(report, lang) if report is not None else {}
    status = 200 if report is not None or not request.args else 422
    site = report_site()
    return render_template("reports/index.html", form=form, report=report, charts=charts,
                           lang=lang, TOTAL=TOTAL, label=label, site=site,
                           minimum=minimum_cell(site)), status


def _built_or_422(form: ReportForm) -> EmployerReport:
    report = _build(form)
    if report is None:
        problems = "; ".join(f"{field.label.text}: {error}"
                             for field in form for error in field.errors)
        abort(Response(_("This report period cannot be used: %(problems)s",
                         problems=problems) + "\n", 422, mimetype="text/plain"))
    return report


@bp.get("/reports/<table_id>.csv")
@role_required(*REPORT_ROLES)
def report_csv(table_id: str) -> Any:
    """One table of the report as CSV, suppression applied (the same cells as the page)."""
    report = _built_or_422(_form())
    try:
        table = report.table(table_id)
    except KeyError:
        abort(404)
    body = reports_service.table_csv(report, table, select_locale(),
                                     hidden_mark=_("suppressed"), total_label=_("Total"))
    name = f"report-{report_site().slug}-{table_id}-{report.first_month}-{report.last_month}.csv"
    return Response(for_excel(body), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/reports/report.pdf")
@role_required(*REPORT_ROLES)
def report_pdf() -> Any:
    """The whole report as a PDF: the same suppressed tables and charts as the page."""
    # Imported here: fpdf2 is about 0.2 s of every server process's start-up (each CLI
    # command, gunicorn worker and sync worker builds the app), for the one route that uses it.
    from ..services import report_pdf as pdf_service

    report = _built_or_422(_form())
    site = report_site()
    lang = select_locale()
    user = current_user()
    assert user is not None
    body = pdf_service.report_pdf(report, lang, _pdf_words(report, site, lang, user.name))
    name = f"report-{site.slug}-{report.first_month}-{report.last_month}.pdf"
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


def _pdf_words(report: EmployerReport, site: Site, lang: str,
               who: str) -> pdf_service.PdfWords:
    """The PDF's words in the page's language (the same sentences as the page)."""
    from ..services import report_pdf as pdf_service

    minimum = report.minimum
    captions = {"screenings": _("People screened per instrument"),
                "origin": _("Blood pressure and BMI: people by where their reading came from"),
                "events": _("Members per event, by how their booking ended"),
                "day_hour": _("People by day and hour")}
    for table in report.tables:
        if table.kind == "outcome":
            captions[table.id] = _("%(instrument)s: people by result",
                                   instrument=label(table.title or {}, lang))
    return pdf_service.PdfWords(
        title=_("Reports for the employer"),
        subtitle=_("%(site)s (%(employer)s). Period: %(first)s to %(last)s.",
                   site=site.name, employer=site.employer.name, first=report.first_month,
                   last=report.last_month),
        privacy=" ".join((
            _("Minimum cell size: %(n)s people.", n=minimum),
            _("These reports show totals only, never one person's results. Every number "
              "counts distinct people."),
            _("A number from 1 to %(below)s is hidden, and so are enough other numbers that "
              "no hidden one can be worked out from the totals.", below=minimum - 1))),
        summary=_("Cells hidden: %(hidden)s (%(primary)s below the minimum, %(extra)s to "
                  "protect them).", hidden=report.hidden_count(),
                  primary=len(report.suppression.primary),
                  extra=len(report.suppression.complementary)),
        suppressed=_("suppressed"), total=_("Total"), captions=captions,
        sections={"screenings": _("Screenings completed"),
                  "outcomes": _("Screening outcomes"),
                  "origin": _("Readings from devices"),
                  "events": _("Participation by event"),
                  "day_hour": _("Participation by day and hour")},
        nothing=_("No data in this period."),
        generated=_("Made on %(when)s for %(who)s", when=format_datetime(
            datetime.now(UTC), "yyyy-MM-dd HH:mm"), who=who))


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
