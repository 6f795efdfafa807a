"""Small-number suppression as a pure function: each case worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import ApiError
from server.reports.figures import percentile
from server.reports.schemas import ReportQuery
from server.reports.service import last_full_month, period_of
from server.reports.suppression import Mark, suppress

S, P, X = Mark.SHOWN, Mark.PRIMARY, Mark.SECONDARY


def test_nothing_small_nothing_withheld():
    assert suppress([[5, 10], [20, 0], [25, 10]]) == [[S, S], [S, S], [S, S]]


def test_counts_from_one_to_four_are_withheld_zero_is_shown():
    marks = suppress([[0, 1, 4, 5]])
    assert marks[0][0] is S and marks[0][3] is S
    assert marks[0][1] is P and marks[0][2] is P


def test_a_lone_small_cell_in_a_column_takes_the_next_smallest_with_it():
    # One column with its total: 3 would be 30 - 12 - 15.
    marks = suppress([[12], [3], [15], [30]])
    assert [m[0] for m in marks] == [X, P, S, S]


def test_two_small_cells_in_a_line_protect_each_other():
    marks = suppress([[12], [3], [4], [19]])
    assert [m[0] for m in marks] == [S, P, P, S]


def test_the_complement_is_the_smallest_cell_that_is_not_zero():
    # A withheld zero beside the 2 would give the 2 away through the total (2 = 9 - 7 - 0).
    marks = suppress([[0], [2], [7], [9]])
    assert [m[0] for m in marks] == [S, P, X, S]


def test_complements_spread_across_rows_and_columns_until_none_is_alone():
    grid = [[20, 3, 23],
            [10, 10, 20],
            [30, 13, 43]]
    # Row 0: the 3 is alone, 20 goes with it; column 0 now holds one (20), its 10 goes too;
    # column 1 holds one (3), its 10 goes too; row 1 then holds two: done. Four unknowns,
    # three equations: the 3 cannot be worked out.
    assert suppress(grid) == [[X, P, S], [X, X, S], [S, S, S]]


def test_a_line_of_zeros_beside_the_withheld_cell_needs_no_complement():
    # Each row's other cells are zero, so no row holds a total; in the column the 4 and the
    # 3 protect each other (7 = 4 + 3 cannot be split).
    assert suppress([[4, 0, 0], [3, 0, 0], [7, 0, 0]]) == [[P, S, S], [P, S, S], [S, S, S]]


@given(st.lists(st.lists(st.integers(0, 40), min_size=3, max_size=3), min_size=1, max_size=6))
def test_no_row_or_column_ever_has_exactly_one_withheld_cell(rows):
    grid = [*rows, [sum(col) for col in zip(*rows, strict=True)]]
    grid = [[*r, sum(r)] for r in grid]
    marks = suppress(grid)
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            assert (marks[r][c] is P) == (0 < v < 5)
    height, width = len(grid), len(grid[0])
    lines = ([[(r, c) for c in range(width)] for r in range(height)]
             + [[(r, c) for r in range(height)] for c in range(width)])
    for line in lines:
        withheld = [(r, c) for r, c in line if marks[r][c] is not S]
        others = [grid[r][c] for r, c in line if marks[r][c] is S]
        # Exactly one withheld only where everything else in the line is zero.
        assert len(withheld) != 1 or not any(others)


def test_rows_of_different_lengths_are_refused():
    with pytest.raises(ValueError):
        suppress([[1, 2], [3]])


def test_percentile_is_linear_between_ranks():
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)
    assert percentile([7], 0.9) == 7


def test_the_default_period_is_last_full_month():
    p = last_full_month(date(2026, 1, 15))
    assert (p.first, p.last) == (date(2025, 12, 1), date(2025, 12, 31))
    p = last_full_month(date(2026, 3, 1))
    assert (p.first, p.last) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_of(ReportQuery(), date(2026, 12, 7)).months() == ["2026-11"]


def test_a_period_backwards_or_too_long_is_refused():
    with pytest.raises(ApiError):
        period_of(ReportQuery(from_=date(2026, 5, 2), to=date(2026, 5, 1)), date(2026, 6, 1))
    with pytest.raises(ApiError):
        period_of(ReportQuery(from_=date(2024, 1, 1), to=date(2026, 1, 1)), date(2026, 6, 1))
    p = period_of(ReportQuery(from_=date(2026, 1, 1), to=date(2026, 3, 31)), date(2026, 6, 1))
    assert p.months() == ["2026-01", "2026-02", "2026-03"]


def test_one_end_alone_takes_the_rest_of_its_month():
    today = date(2026, 6, 1)
    p = period_of(ReportQuery(from_=date(2024, 2, 10)), today)
    assert (p.first, p.last) == (date(2024, 2, 10), date(2024, 2, 29))
    p = period_of(ReportQuery(to=date(2026, 12, 15)), today)
    assert (p.first, p.last) == (date(2026, 12, 1), date(2026, 12, 15))
