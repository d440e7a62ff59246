"""Small-cell suppression for employer reports, and the audit that proves it holds.

Pure: no Flask, no SQLAlchemy, no I/O. A report is a set of tables whose cells are named by
keys; a number that appears in two tables (a table's total that is another table's cell) carries
the same key in both, so suppression is decided over the whole report at once and no table's
totals can reveal another table's hidden cell.

- **Primary suppression.** Every cell from 1 to ``minimum - 1`` is hidden (cells count distinct
  members; the caller counts them). The minimum is 11 by default and never below 5.
- **Zeros are published.** A true zero describes nobody, so it identifies nobody. This follows
  the CMS Cell Size Suppression Policy (CMS / ResDAC, 2017, updated 2024): "no cell ... containing
  a value of 1 to 10 can be reported directly. A value of zero does not violate the minimum cell
  size policy", and "no cell can be reported that allows a value of 1 to 10 to be derived from
  other reported cells". Because zeros are shown, a reader knows every hidden cell is at least 1,
  and the audit grants the reader that knowledge.
- **Complementary suppression.** More cells are hidden, smallest first and inner cells before
  totals, until the audit passes.
- **The audit.** For each hidden cell, two linear programs (HiGHS, through highspy) find the
  least and the greatest value it can take given every published cell, every relation between
  cells (row, column and grand totals, and totals shared between tables) and the bound ``>= 1``.
  The cell is protected when ``greatest - least >= minimum``. The programs relax the integers to
  reals: the real range contains the integer one, so for tables whose relations are not totally
  unimodular the audit may be slightly generous; for two-way tables with margins (the reports'
  shape) the matrix is totally unimodular and both ranges agree, which a brute-force test checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import N_

DEFAULT_MINIMUM = 11
LOWEST_MINIMUM = 5
TOTAL = "total"

# Any hashable value names a cell (Mapping keys are invariant: Hashable would refuse
# a dict[str, int]).
Key = Any


class SuppressionError(ValueError):
    """Bad input to suppression: names the field at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def check_minimum(minimum: int) -> int:
    """Return ``minimum`` if it is an allowed minimum cell size, else raise naming the field."""
    if isinstance(minimum, bool) or not isinstance(minimum, int):
        raise SuppressionError("min_cell", N_("must be a whole number"))
    if minimum < LOWEST_MINIMUM:
        raise SuppressionError("min_cell", N_("must be at least %(n)d", n=LOWEST_MINIMUM))
    return minimum


@dataclass(frozen=True)
class Equation:
    """One published additive relation: ``total`` is the sum of ``parts``."""

    total: Key
    parts: tuple[Key, ...]


@dataclass(frozen=True)
class Table:
    """A two-way table of counts with optional row and column totals.

    ``counts`` maps (row, column) to a count; a missing pair is a structural blank (shown as a
    dash, in no relation). ``shared`` renames a cell's default key to a key used by another
    table, which is how two tables say they publish the same number.
    """

    name: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    counts: Mapping[tuple[str, str], int]
    row_totals: bool = False
    col_totals: bool = False
    shared: Mapping[Key, Key] = field(default_factory=dict)

    def key(self, row: str, col: str) -> Key:
        """The key of a cell; ``TOTAL`` as row or column names a margin."""
        default = (self.name, row, col)
        return self.shared.get(default, default)

    def has(self, row: str, col: str) -> bool:
        """Whether the table publishes this cell (inner or margin)."""
        if row == TOTAL and col == TOTAL:
            return self.row_totals and self.col_totals
        if col == TOTAL:
            return self.row_totals and row in self.rows
        if row == TOTAL:
            return self.col_totals and col in self.cols
        return (row, col) in self.counts

    def cells(self) -> dict[Key, int]:
        """Every published cell of the table, margins included, by key."""
        out: dict[Key, int] = {}
        for (row, col), n in self.counts.items():
            out[self.key(row, col)] = n
        if self.row_totals:
            for row in self.rows:
                out[self.key(row, TOTAL)] = self._row_sum(row)
        if self.col_totals:
            for col in self.cols:
                out[self.key(TOTAL, col)] = self._col_sum(col)
        if self.row_totals and self.col_totals:
            out[self.key(TOTAL, TOTAL)] = sum(self.counts.values())
        return out

    def equations(self) -> list[Equation]:
        """The additive relations a reader can see in this table."""
        eqs: list[Equation] = []
        if self.row_totals:
            for row in self.rows:
                parts = tuple(self.key(row, c) for c in self.cols if (row, c) in self.counts)
                eqs.append(Equation(self.key(row, TOTAL), parts))
        if self.col_totals:
            for col in self.cols:
                parts = tuple(self.key(r, col) for r in self.rows if (r, col) in self.counts)
                eqs.append(Equation(self.key(TOTAL, col), parts))
        if self.row_totals and self.col_totals:
            grand = self.key(TOTAL, TOTAL)
            eqs.append(Equation(grand, tuple(self.key(r, TOTAL) for r in self.rows)))
            eqs.append(Equation(grand, tuple(self.key(TOTAL, c) for c in self.cols)))
        return eqs

    def _row_sum(self, row: str) -> int:
        return sum(n for (r, _c), n in self.counts.items() if r == row)

    def _col_sum(self, col: str) -> int:
        return sum(n for (_r, c), n in self.counts.items() if c == col)


@dataclass(frozen=True)
class Publication:
    """All the cells of one report and how they add up: what suppression decides over."""

    values: Mapping[Key, int]
    equations: tuple[Equation, ...]

    @classmethod
    def of(cls, tables: Iterable[Table]) -> Publication:
        """Gather tables into one publication; a shared key must carry one value everywhere."""
        values: dict[Key, int] = {}
        equations: list[Equation] = []
        for table in tables:
            for key, n in table.cells().items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise SuppressionError("counts", f"{key!r} is not a count: {n!r}")
                if key in values and values[key] != n:
                    raise SuppressionError(
                        "shared", f"{key!r} is {values[key]} in one table and {n} in {table.name}")
                values[key] = n
            equations.extend(table.equations())
        return cls(values, tuple(equations))


@dataclass(frozen=True)
class CellRange:
    """What a reader can work out about one hidden cell: the least and greatest it may be."""

    key: Key
    low: float
    high: float  # math.inf when nothing published bounds it
    exact: bool = True  # False: a proven sub-range, already wide enough (see ``audit``)

    def width(self) -> float:
        """How wide the range is."""
        return self.high - self.low

    def protects(self, minimum: int) -> bool:
        """Whether the range is at least as wide as the minimum cell."""
        return self.width() >= minimum


@dataclass(frozen=True)
class Suppression:
    """Which cells a report hides, and why."""

    minimum: int
    primary: frozenset[Key]
    complementary: frozenset[Key]

    @property
    def hidden(self) -> frozenset[Key]:
        """Every hidden cell."""
        return self.primary | self.complementary


def primary_cells(values: Mapping[Key, int], minimum: int) -> frozenset[Key]:
    """Cells under the minimum that are not true zeros."""
    check_minimum(minimum)
    return frozenset(k for k, n in values.items() if 0 < n < minimum)


def suppress(publication: Publication, minimum: int = DEFAULT_MINIMUM) -> Suppression:
    """Hide the small cells and enough others that none of them can be narrowed down."""
    primary = primary_cells(publication.values, minimum)
    hidden = set(primary)
    to_check = set(hidden)
    while to_check:
        failing = [r.key for r in audit(publication, frozenset(hidden), minimum, only=to_check)
                   if not r.protects(minimum)]
        added: set[Key] = set()
        for key in sorted(failing, key=repr):
            pick = _complement(publication, hidden | added, key)
            if pick is not None:
                added.add(pick)
        if failing and not added:
            pick = _any_complement(publication, hidden)
            if pick is None:  # cannot happen with consistent counts: hiding all is unbounded
                raise SuppressionError("counts", "the published relations are inconsistent")
            added.add(pick)
        hidden |= added
        # Hiding a cell frees a variable, so ranges only widen: a cell that passed stays passed.
        to_check = set(failing) | added
    return Suppression(minimum, primary, frozenset(hidden - primary))


def _is_total(publication: Publication, key: Key) -> bool:
    return any(eq.total == key for eq in publication.equations)


def _candidates(publication: Publication, hidden: set[Key], keys: Iterable[Key]) -> list[Key]:
    values = publication.values
    return [k for k in keys if k not in hidden and values[k] > 0]


def _rank(publication: Publication, key: Key) -> tuple[bool, int, str]:
    # Inner cells before totals (a total is worth more to readers), then the smallest count.
    return (_is_total(publication, key), publication.values[key], repr(key))


def _complement(publication: Publication, hidden: set[Key], key: Key) -> Key | None:
    """The cheapest published cell that shares a relation with ``key``."""
    around: list[Key] = []
    for eq in publication.equations:
        members = (eq.total, *eq.parts)
        if key in members:
            around.extend(members)
    candidates = _candidates(publication, hidden, around)
    return min(candidates, key=lambda k: _rank(publication, k)) if candidates else None


def _any_complement(publication: Publication, hidden: set[Key]) -> Key | None:
    """The cheapest published cell in any relation that involves a hidden cell."""
    around: list[Key] = []
    for eq in publication.equations:
        members = (eq.total, *eq.parts)
        if any(m in hidden for m in members):
            around.extend(members)
    candidates = _candidates(publication, hidden, around)
    return min(candidates, key=lambda k: _rank(publication, k)) if candidates else None


def audit(publication: Publication, hidden: Iterable[Key], minimum: int = DEFAULT_MINIMUM,
          *, only: Iterable[Key] | None = None, exact: bool = False) -> list[CellRange]:
    """For each hidden cell (or those in ``only``), the range a reader can narrow it to.

    With ``exact`` every range is the linear program's. Without it, a cell whose values in
    two known feasible fillings (the true table, and each program's optimum found so far) are
    already ``minimum`` apart is proven protected without a program of its own: its true range
    contains that span, so the verdict is the same and the range is a lower bound
    (``exact=False`` on it).
    """
    check_minimum(minimum)
    hidden_set = frozenset(hidden)
    unknown = sorted(hidden_set, key=repr)
    index = {k: i for i, k in enumerate(unknown)}
    rows: list[dict[int, float]] = []
    rhs: list[float] = []
    for eq in publication.equations:
        coef: dict[int, float] = {}
        constant = 0.0
        # total - sum(parts) = 0, with the published numbers moved to the right-hand side.
        for key, sign in ((eq.total, 1.0), *((p, -1.0) for p in eq.parts)):
            if key in index:
                coef[index[key]] = coef.get(index[key], 0.0) + sign
            else:
                constant += sign * publication.values[key]
        coef = {i: c for i, c in coef.items() if c != 0.0}
        if coef:
            rows.append(coef)
            rhs.append(-constant)
    wanted = hidden_set if only is None else hidden_set & frozenset(only)
    groups: dict[int, list[int]] = {}
    for var, root in enumerate(_components(len(unknown), rows)):
        groups.setdefault(root, []).append(var)
    out: list[CellRange] = []
    for members in groups.values():
        asked = [v for v in members if unknown[v] in wanted]
        if asked:
            truth = [float(publication.values[unknown[v]]) for v in members]
            out.extend(_Component(members, rows, rhs, truth).ranges(
                asked, unknown, minimum, exact))
    return sorted(out, key=lambda r: repr(r.key))


def _components(n: int, rows: Sequence[Mapping[int, float]]) -> list[int]:
    """Union-find over unknowns linked by a relation: each cell's LP needs only its own group."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row in rows:
        first, *rest = row
        for other in rest:
            parent[find(other)] = find(first)
    return [find(i) for i in range(n)]


class _Component:
    """The linear system of one group of linked hidden cells, and the fillings seen so far.

    The system is handed to HiGHS once. Each program then changes only the objective, so the
    solver starts from the previous program's optimal basis (a few pivots) instead of from
    nothing: the audit of a report solves hundreds of programs over the same constraints.
    """

    def __init__(self, members: Sequence[int], rows: Sequence[Mapping[int, float]],
                 rhs: Sequence[float], truth: Sequence[float]) -> None:
        # Imported here: numpy costs every process that imports the services (each CLI
        # command, server and sync worker) about a tenth of a second of start-up, and only a
        # report's audit with hidden cells builds a system.
        import numpy as np

        self.local = {v: j for j, v in enumerate(members)}
        self.mine = [({self.local[v]: c for v, c in r.items()}, b)
                     for r, b in zip(rows, rhs, strict=True) if next(iter(r)) in self.local]
        self.size = len(members)
        self._highs: Any = None
        # The true filling is feasible: the first witness of every cell's span.
        self.low = np.array(truth, dtype=float)
        self.high = np.array(truth, dtype=float)

    def _solver(self) -> Any:
        """HiGHS holding this component's constraints (x >= 1 and each relation), made once."""
        if self._highs is None:
            # Imported here, as numpy above: only a report's audit solves anything.
            import numpy as np
            from highspy import kHighsInf
            from highspy._core import _Highs

            # The core class, as scipy's linprog uses it: highspy.Highs wraps it for interactive
            # use (Ctrl-C handling, callbacks) and prints a banner on stdout when first made.
            highs = _Highs()
            highs.setOptionValue("output_flag", False)
            # Presolve would rebuild the problem at every objective and answer "unbounded or
            # infeasible" where the true filling already proves feasibility.
            highs.setOptionValue("presolve", "off")
            n = self.size
            highs.addVars(n, np.ones(n), np.full(n, kHighsInf))
            starts: list[int] = []
            index: list[int] = []
            value: list[float] = []
            for coef, _b in self.mine:
                starts.append(len(index))
                index.extend(coef)
                value.extend(coef.values())
            b = np.array([b for _coef, b in self.mine], dtype=np.float64)
            highs.addRows(len(b), b, b, len(index), np.array(starts, dtype=np.int32),
                          np.array(index, dtype=np.int32), np.array(value, dtype=np.float64))
            self._highs = highs
        return self._highs

    def _solve(self, j: int | list[int], sign: float) -> tuple[int, float]:
        """Minimise (sign 1) or maximise (sign -1) cell j, or the sum of cells j; keep the
        optimum as a witness. Statuses as scipy's linprog: 0 optimal, 3 unbounded."""
        import numpy as np

        if not self.mine:  # linked by nothing: only the bound x >= 1 holds
            return (0, 1.0) if sign > 0 else (3, math.inf)
        import highspy

        highs = self._solver()
        target = np.zeros(self.size)
        target[j] = sign
        highs.changeColsCost(self.size, np.arange(self.size, dtype=np.int32), target)
        highs.run()
        status = highs.getModelStatus()
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnbounded):
            # A start from an earlier basis can stall ("unknown"): solve this one afresh.
            highs.clearSolver()
            highs.run()
            status = highs.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            x = np.array(highs.getSolution().col_value)
            self.low = np.minimum(self.low, x)
            self.high = np.maximum(self.high, x)
            return 0, sign * float(highs.getInfo().objective_function_value)
        if status == highspy.HighsModelStatus.kUnbounded:
            return 3, math.inf
        return 4, math.inf

    def ranges(self, asked: Sequence[int], names: Sequence[Key], minimum: int,
               exact: bool) -> list[CellRange]:
        """The range of each asked cell, solving only what the witnesses do not settle."""
        if not exact:
            self._spread([self.local[v] for v in asked], minimum)
        out = []
        for var in asked:
            j = self.local[var]
            if not exact and self.high[j] - self.low[j] >= minimum:
                out.append(CellRange(names[var], float(self.low[j]), float(self.high[j]),
                                     exact=False))
                continue
            status_hi, hi = self._solve(j, -1.0)
            status_lo, lo = self._solve(j, 1.0)
            # Status 3 is "unbounded"; anything else but 0 (infeasible, numerical trouble) must
            # not be read as a wide range, so it stops the report instead.
            if status_lo != 0 or status_hi not in (0, 3):
                raise SuppressionError("counts", f"the audit could not bound {names[var]!r}")
            out.append(CellRange(names[var], lo, hi if status_hi == 0 else math.inf))
        return out


    def _spread(self, cells: list[int], minimum: int, rounds: int = 40) -> None:
        """Push all unsettled cells up together, then down together, while that settles some.

        One pair of programs over their sum moves many cells at once (a vertex puts one
        cell of each relation high and the others low), so a table with hundreds of small
        cells needs a few dozen programs instead of two per cell.
        """
        pending = [j for j in cells if self.high[j] - self.low[j] < minimum]
        for _round in range(rounds):
            if len(pending) < 2:
                return
            self._solve(pending, -1.0)
            self._solve(pending, 1.0)
            still = [j for j in pending if self.high[j] - self.low[j] < minimum]
            if len(still) == len(pending):
                return
            pending = still


def audit_passes(publication: Publication, hidden: Iterable[Key],
                 minimum: int = DEFAULT_MINIMUM) -> bool:
    """Whether every hidden cell's range is at least as wide as the minimum."""
    hidden_set = frozenset(hidden)
    if any(0 < publication.values[k] < minimum for k in publication.values
           if k not in hidden_set):
        return False
    return all(r.protects(minimum) for r in audit(publication, hidden_set, minimum))
