"""Small-cell suppression on its own: primary, complementary across tables, and the LP audit."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onsite_server.services.suppression import (
    TOTAL,
    Equation,
    Publication,
    SuppressionError,
    Table,
    audit,
    audit_passes,
    check_minimum,
    primary_cells,
    suppress,
)


def grid(name: str, counts: list[list[int]], **kw: object) -> Table:
    """A table with rows r0.. and columns c0.. and both margins unless told otherwise."""
    rows = tuple(f"r{i}" for i in range(len(counts)))
    cols = tuple(f"c{j}" for j in range(len(counts[0])))
    cells = {(rows[i], cols[j]): n for i, line in enumerate(counts) for j, n in enumerate(line)}
    options: dict[str, object] = {"row_totals": True, "col_totals": True} | kw
    return Table(name, rows, cols, cells, **options)  # type: ignore[arg-type]


def brute_range(pub: Publication, hidden: frozenset[object], key: object,
                ceiling: int) -> tuple[int, int]:
    """Every integer filling of the hidden cells in [1, ceiling] that keeps all relations."""
    unknown = sorted(hidden, key=repr)
    seen: list[int] = []
    for guess in itertools.product(range(1, ceiling + 1), repeat=len(unknown)):
        values = dict(pub.values) | dict(zip(unknown, guess, strict=True))
        if all(values[eq.total] == sum(values[p] for p in eq.parts) for eq in pub.equations):
            seen.append(values[key])
    return min(seen), max(seen)


@pytest.mark.parametrize("minimum", [5, 11, 20])
def test_allowed_minimums(minimum: int) -> None:
    assert check_minimum(minimum) == minimum


@pytest.mark.parametrize("minimum", [4, 0, -3, True, 7.5])
def test_a_minimum_below_five_or_not_whole_is_refused_naming_the_field(minimum: object) -> None:
    with pytest.raises(SuppressionError) as err:
        check_minimum(minimum)  # type: ignore[arg-type]
    assert err.value.field == "min_cell"


def test_primary_hides_one_to_minimum_less_one_and_publishes_zeros() -> None:
    values = {"a": 0, "b": 1, "c": 10, "d": 11, "e": 500}
    assert primary_cells(values, 11) == {"b", "c"}
    assert primary_cells(values, 5) == {"b"}


def test_primary_only_is_caught_by_the_audit() -> None:
    # Row r0 is 3 + 40 = 43: hiding the 3 alone leaves it to subtraction.
    pub = Publication.of([grid("t", [[3, 40], [30, 50]])])
    naive = primary_cells(pub.values, 11)
    assert naive == {("t", "r0", "c0")}
    ranges = audit(pub, naive, 11)
    assert [(r.low, r.high) for r in ranges] == [(3.0, 3.0)]
    assert not audit_passes(pub, naive, 11)


def test_complementary_suppression_hides_a_rectangle() -> None:
    pub = Publication.of([grid("t", [[3, 40, 25], [30, 50, 60], [45, 20, 70]])])
    result = suppress(pub, 11)
    assert result.primary == {("t", "r0", "c0")}
    assert len(result.complementary) >= 3  # the 3 needs a partner in its row, column and both
    assert audit_passes(pub, result.hidden, 11)
    for r in audit(pub, result.hidden, 11):
        assert r.width() >= 11


def test_a_shared_margin_is_protected_across_tables() -> None:
    # "screened" publishes the column totals of two outcome tables as its own cells.
    outcome_a = Table("a", ("low", "high"), ("n",), {("low", "n"): 4, ("high", "n"): 30},
                      col_totals=True, shared={("a", TOTAL, "n"): ("screened", "a", "n")})
    outcome_b = Table("b", ("low", "high"), ("n",), {("low", "n"): 25, ("high", "n"): 26},
                      col_totals=True, shared={("b", TOTAL, "n"): ("screened", "b", "n")})
    screened = Table("screened", ("a", "b"), ("n",), {("a", "n"): 34, ("b", "n"): 51})
    pub = Publication.of([outcome_a, outcome_b, screened])
    # The screened count is one key in both places, so it is one number to hide or show.
    assert sum(1 for k in pub.values if k == ("screened", "a", "n")) == 1
    result = suppress(pub, 11)
    assert ("a", "low", "n") in result.primary
    assert audit_passes(pub, result.hidden, 11)
    # Hiding only the 4 inside its own table would not do: the other table gives the total.
    assert not audit_passes(pub, {("a", "low", "n")}, 11)


def test_shared_keys_must_agree() -> None:
    one = Table("x", ("r",), ("n",), {("r", "n"): 5}, shared={("x", "r", "n"): "same"})
    two = Table("y", ("r",), ("n",), {("r", "n"): 6}, shared={("y", "r", "n"): "same"})
    with pytest.raises(SuppressionError) as err:
        Publication.of([one, two])
    assert err.value.field == "shared"


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(SuppressionError) as err:
        Publication.of([grid("t", [[-1, 2]])])
    assert err.value.field == "counts"


def test_a_table_with_no_margins_needs_no_complement() -> None:
    pub = Publication.of([grid("t", [[3, 40], [30, 50]], row_totals=False, col_totals=False)])
    result = suppress(pub, 11)
    assert result.hidden == {("t", "r0", "c0")} and not result.complementary
    assert [r.high for r in audit(pub, result.hidden, 11)] == [math.inf]


@pytest.mark.parametrize("counts", [
    [[3, 4], [5, 6]],
    [[1, 2, 3], [2, 9, 1]],
    [[0, 2], [7, 1]],
])
def test_the_lp_range_equals_the_integer_range_on_small_tables(counts: list[list[int]]) -> None:
    pub = Publication.of([grid("t", counts)])
    hidden = frozenset(k for k, n in pub.values.items() if n > 0)  # hide every nonzero cell
    ceiling = sum(map(sum, counts)) + 3
    for r in audit(pub, hidden, 5, exact=True):
        assert r.exact
        if r.high == math.inf:
            continue
        assert brute_range(pub, hidden, r.key, ceiling) == (r.low, r.high)


def test_the_audit_counts_every_relation_not_only_one_table() -> None:
    # Two hidden cells that look protected in their row, but a second relation pins one.
    pub = Publication({"x": 3, "y": 20, "t": 23, "u": 3}, (Equation("t", ("x", "y")),
                                                        Equation("u", ("x",))))
    assert not audit_passes(pub, {"x", "y"}, 11)


counts = st.integers(min_value=0, max_value=60) | st.integers(min_value=0, max_value=12)


@st.composite
def tables(draw: st.DrawFn) -> list[Table]:
    """One to three random tables; the later ones may share a margin with the first."""
    n_rows = draw(st.integers(1, 4))
    n_cols = draw(st.integers(1, 4))
    first = [[draw(counts) for _ in range(n_cols)] for _ in range(n_rows)]
    out = [grid("t0", first)]
    for t in range(1, draw(st.integers(1, 3))):
        # A breakdown of one of the first table's rows into another dimension: its column
        # totals are the first table's cells.
        row = draw(st.integers(0, n_rows - 1))
        parts = draw(st.integers(1, 3))
        cols = tuple(f"c{j}" for j in range(n_cols))
        cells: dict[tuple[str, str], int] = {}
        for j, col in enumerate(cols):
            left = first[row][j]
            for p in range(parts - 1):
                take = draw(st.integers(0, left))
                cells[(f"p{p}", col)] = take
                left -= take
            cells[(f"p{parts - 1}", col)] = left
        shared = {(f"t{t}", TOTAL, col): ("t0", f"r{row}", col) for col in cols}
        out.append(Table(f"t{t}", tuple(f"p{p}" for p in range(parts)), cols, cells,
                         col_totals=True, shared=shared))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([5, 11]))
def test_property_no_hidden_cell_can_be_narrowed_below_the_minimum(
        report: list[Table], minimum: int) -> None:
    pub = Publication.of(report)
    result = suppress(pub, minimum)
    assert result.primary == primary_cells(pub.values, minimum)
    shown = {k: n for k, n in pub.values.items() if k not in result.hidden}
    assert all(n == 0 or n >= minimum for n in shown.values())
    for r in audit(pub, result.hidden, minimum):
        assert r.low <= pub.values[r.key] <= r.high  # the truth is inside what a reader sees
        assert r.width() >= minimum


@settings(max_examples=40, deadline=None)
@given(tables())
def test_property_primary_only_fails_whenever_a_relation_has_one_hidden_cell(
        report: list[Table]) -> None:
    pub = Publication.of(report)
    naive = primary_cells(pub.values, 11)
    lone = any(sum(m in naive for m in (eq.total, *eq.parts)) == 1 for eq in pub.equations)
    if lone:
        assert not audit_passes(pub, naive, 11)


def test_a_witnessed_range_agrees_with_the_exact_verdict() -> None:
    pub = Publication.of([grid("t", [[3, 40, 25, 14], [30, 2, 60, 12], [45, 20, 4, 70],
                                     [13, 17, 19, 1]])])
    result = suppress(pub, 11)
    fast = {r.key: r for r in audit(pub, result.hidden, 11)}
    slow = {r.key: r for r in audit(pub, result.hidden, 11, exact=True)}
    assert fast.keys() == slow.keys()
    for key, r in fast.items():
        assert slow[key].low <= r.low and r.high <= slow[key].high  # a sub-range of the truth
        assert r.protects(11) == slow[key].protects(11)


def test_the_server_and_its_commands_start_without_highspy_numpy_or_alembic() -> None:
    """HiGHS and numpy are imported by the audit only, alembic by a migration or a revision
    check: every `onsite-server` process (a CLI command, the server, a sync worker) imports
    the services and the CLI, and numpy and alembic cost each about 0.1 and 0.25 s of CPU."""
    code = ("import sys, onsite_server.cli, onsite_server.services.reports\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120, cwd=Path(__file__).resolve().parents[3])
    loaded = set(done.stdout.split())
    assert "flask" in loaded and "sqlalchemy" in loaded  # the imports really ran
    assert "highspy" not in loaded
    assert "scipy" not in loaded
    assert "numpy" not in loaded
    assert "alembic" not in loaded


def test_a_program_that_stalls_from_the_last_ones_basis_is_solved_afresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit keeps one HiGHS per linked group of cells and starts each program from the
    last one's basis. In this table (found among 600 random ones) one such start ends with
    status "unknown": that program is solved again from nothing, and every range is the same
    as when each cell is audited alone, on a solver of its own."""
    from onsite_server.services import suppression

    counts = [[1, None, 20, 2, 12, 0], [2, 8, None, 3, 3, None], [0, 3, 100, None, 1, 3]]
    rows, cols = ("r0", "r1", "r2"), ("c0", "c1", "c2", "c3", "c4", "c5")
    table = Table("a", rows, cols, {(rows[i], cols[j]): n for i, line in enumerate(counts)
                                    for j, n in enumerate(line) if n is not None},
                  row_totals=True, col_totals=True)
    pub = Publication.of([table])
    hidden = suppress(pub, 11).hidden
    restarts: list[int] = []
    made = suppression._Component._solver

    class Counting:
        def __init__(self, highs: object) -> None:
            self.highs = highs

        def __getattr__(self, name: str) -> object:
            if name == "clearSolver":
                restarts.append(1)
            return getattr(self.highs, name)

    monkeypatch.setattr(suppression._Component, "_solver",
                        lambda self: Counting(made(self)))
    together = audit(pub, hidden, 11, exact=True)
    assert restarts  # the stall happened, and was answered by a fresh solve
    monkeypatch.undo()
    alone = [audit(pub, hidden, 11, only=[r.key], exact=True)[0] for r in together]
    assert [(r.key, r.low, r.high) for r in together] == [(r.key, r.low, r.high) for r in alone]
    assert all(r.protects(11) for r in together)
