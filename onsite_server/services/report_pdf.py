"""The employer report as a PDF (fpdf2): the same suppressed tables and charts as the page.

Every number comes from ``EmployerReport.shown``, so a cell hidden on the page is hidden here
too ("suppressed", with a hatched bar in the charts). The words are passed in already in the
reader's language (``PdfWords``): this module has no Flask and no translations of its own.
The built-in Helvetica covers Latin-1, which is all of English and Spanish. The typography
that word processors and phones put in names and titles (curly quotes, dashes, an ellipsis)
prints as its plain form; any other character outside Latin-1 (an emoji, Arabic, Chinese in
an event title) prints as "?" rather than failing the download.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fpdf import FPDF
from fpdf.fonts import FontFace

from .reports import PEOPLE, EmployerReport, ReportTable, cols_of, label, rows_of
from .suppression import TOTAL

PAGE_WIDTH = 180  # mm inside the margins of an A4 page
BAR_AREA = 90  # mm for the longest bar
GREY = (110, 110, 110)
BAR = (31, 95, 139)
HATCH = (200, 200, 200)


@dataclass(frozen=True)
class PdfWords:
    """The report's fixed words in the reader's language."""

    title: str
    subtitle: str  # the site or sites, and the period
    privacy: str  # the minimum cell size and what suppression means
    summary: str  # how many cells are hidden
    suppressed: str
    total: str
    captions: Mapping[str, str]  # table id -> its caption
    sections: Mapping[str, str]  # "screenings", "outcomes", "origin", "events", "day_hour"
    nothing: str  # "No data in this period."
    generated: str  # "Made on ... by ..."


# Outside Latin-1 but with a plain form in it: "Flu shots – Building B" must not print as
# "Flu shots ? Building B".
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
                        "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2010": "-",
                        "\u2011": "-", "\u2212": "-", "\u2026": "...", "\u2022": "*",
                        "\u20ac": "EUR", "\u2122": "(TM)", "\u00a0": " ", "\u202f": " ",
                        "\u2009": " ", "\u200b": "", "\ufeff": ""})


def _text(value: object) -> str:
    return str(value).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = footer_text
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        """A footer with when and how the report was made, and the page number."""
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(*GREY)
        self.cell(0, 5, _text(f"{self._footer_text}  -  {self.page_no()}/{{nb}}"),
                  align="C")
        self.set_text_color(0, 0, 0)


def report_pdf(report: EmployerReport, language: str, words: PdfWords) -> bytes:
    """Lay the report out as an A4 PDF and return its bytes."""
    pdf = _Pdf(words.generated)
    pdf.set_title(_text(words.title))
    pdf.set_creator("Onsite Wellness")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.multi_cell(0, 8, _text(words.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, _text(words.subtitle), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_fill_color(238, 243, 248)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(0, 5, _text(words.privacy), fill=True, new_x="LMARGIN", new_y="NEXT",
                   padding=2)
    pdf.ln(1)
    pdf.multi_cell(0, 5, _text(words.summary), new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, words.sections["screenings"])
    screenings = report.table("screenings")
    if screenings.table.rows:
        _chart(pdf, report, screenings, words, [
            (label(screenings.row_labels[row], language), row, PEOPLE)
            for row in screenings.table.rows])
        _table(pdf, report, screenings, language, words)
    else:
        _note(pdf, words.nothing)

    _heading(pdf, words.sections["outcomes"])
    outcomes = [t for t in report.tables if t.kind == "outcome"]
    for table in outcomes:
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.multi_cell(0, 6, _text(label(table.title or {}, language)), new_x="LMARGIN",
                       new_y="NEXT")
        _chart(pdf, report, table, words, [(label(table.row_labels[row], language), row, PEOPLE)
                                           for row in table.table.rows])
        _table(pdf, report, table, language, words)
    if not outcomes:
        _note(pdf, words.nothing)

    # Where the blood pressures and weights came from (issue 19): a table, no chart.
    origin = report.table("origin")
    _heading(pdf, words.sections["origin"])
    if origin.table.rows:
        _table(pdf, report, origin, language, words)
    else:
        _note(pdf, words.nothing)

    # As on the page: people checked in per event, and visits by hour of the day.
    events = report.table("events")
    day_hour = report.table("day_hour")
    bars = {"events": [(label(events.row_labels[row], language), row, "checked_in")
                       for row in events.table.rows],
            "day_hour": [(label(day_hour.col_labels[col], language), TOTAL, col)
                         for col in day_hour.table.cols]}
    for table in (events, day_hour):
        _heading(pdf, words.sections[table.id])
        if table.table.rows:
            _chart(pdf, report, table, words, bars[table.id])
            _table(pdf, report, table, language, words)
        else:
            _note(pdf, words.nothing)
    return bytes(pdf.output())


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(30):  # never a heading alone at the foot of a page
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.multi_cell(0, 7, _text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _note(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, _text(text), new_x="LMARGIN", new_y="NEXT")


def _chart(pdf: FPDF, report: EmployerReport, table: ReportTable, words: PdfWords,
           cells: Sequence[tuple[str, str, str]]) -> None:
    """Horizontal bars, one per (label, row, column); a suppressed cell is a hatched bar."""
    values = [report.shown(table, row, col) for _label, row, col in cells]
    largest = max((v for v in values if v is not None), default=0) or 1
    pdf.set_font("Helvetica", size=9)
    if len(cells) < 20 and pdf.will_page_break(6 * len(cells)):
        pdf.add_page()  # a short chart stays on one page
    for (name, _row, _col), value in zip(cells, values, strict=True):
        if pdf.will_page_break(6):
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(60, 5, _fit(pdf, _text(name), 59))
        x = pdf.l_margin + 62
        if value is None:
            pdf.set_fill_color(*HATCH)
            pdf.set_draw_color(*GREY)
            pdf.rect(x, y + 0.5, BAR_AREA / 3, 4, style="DF")
            for step in range(0, int(BAR_AREA / 3), 3):  # the hatching, as on the page
                pdf.line(x + step, y + 4.5, x + step + 3, y + 0.5)
            pdf.set_xy(x + BAR_AREA / 3 + 2, y)
            pdf.cell(30, 5, _text(words.suppressed))
        else:
            width = BAR_AREA * value / largest
            if width:
                pdf.set_fill_color(*BAR)
                pdf.rect(x, y + 0.5, width, 4, style="F")
            pdf.set_xy(x + width + 2, y)
            pdf.cell(20, 5, str(value))
        pdf.set_xy(pdf.l_margin, y + 6)
    pdf.ln(2)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """The text cut (with "...") to fit width mm in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def _table(pdf: FPDF, report: EmployerReport, table: ReportTable, language: str,
           words: PdfWords) -> None:
    """The table with its margins; a suppressed cell reads the word, a blank one a dash."""
    caption = words.captions.get(table.id)
    if caption:
        pdf.set_font("Helvetica", style="I", size=9)
        pdf.multi_cell(0, 5, _text(caption), new_x="LMARGIN", new_y="NEXT")
    t = table.table
    rows, cols = rows_of(table), cols_of(table)
    size = 8 if len(cols) > 8 else 9
    pdf.set_font("Helvetica", size=size)
    first = min(60, PAGE_WIDTH / (len(cols) + 1) * 2)
    rest = (PAGE_WIDTH - first) / max(1, len(cols))
    hidden = FontFace(emphasis="ITALICS", color=GREY, fill_color=(235, 235, 235))
    bold = FontFace(emphasis="BOLD")
    # The charts leave their bar colours set: a table starts from white and grey lines.
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(*GREY)
    pdf.set_text_color(0, 0, 0)

    def name(labels: Mapping[str, Mapping[str, str]], key: str) -> str:
        return words.total if key == TOTAL else label(labels[key], language)

    with pdf.table(col_widths=(first, *([rest] * len(cols))), text_align=(
            "LEFT", *(["RIGHT"] * len(cols))), line_height=5, width=PAGE_WIDTH,
            first_row_as_headings=True, cell_fill_mode="NONE",
            headings_style=FontFace(emphasis="BOLD", fill_color=(230, 236, 242))) as out:
        head = out.row()
        head.cell("")
        for col in cols:
            head.cell(_text(name(table.col_labels, col)))
        for row in rows:
            line = out.row()
            line.cell(_text(name(table.row_labels, row)),
                      style=bold if row == TOTAL else None)
            for col in cols:
                if not t.has(row, col):
                    line.cell("-")
                    continue
                value = report.shown(table, row, col)
                if value is None:
                    line.cell(_text(words.suppressed), style=hidden)
                else:
                    line.cell(str(value), style=bold if TOTAL in (row, col) else None)
    pdf.ln(2)
