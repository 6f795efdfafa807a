"""Small-number suppression of a published table, as one pure function.

A count of 1 to 4 could point at a person: it is withheld (``PRIMARY``, shown "<5"). A table
with totals would give such a cell back by subtraction when it is the only one withheld in its
row or column, so the smallest other cell of that line is withheld too (``SECONDARY``), and so
on until no row or column has exactly one withheld cell (a line whose other cells are all
zero is left alone: it holds no total to subtract from). Every row and every column counts as
a line whether or not its cells add up: it costs a few more withheld cells and needs no
knowledge of which columns are parts of which. Zero is published: it names nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

THRESHOLD = 5


class Mark(StrEnum):
    SHOWN = "shown"
    PRIMARY = "primary"        # 1 to THRESHOLD-1: shown as "<5"
    SECONDARY = "secondary"    # withheld so that a primary cell cannot be worked out


def suppress(grid: Sequence[Sequence[int]], threshold: int = THRESHOLD) -> list[list[Mark]]:
    """The mark of each cell of ``grid`` (rows of equal length, totals included as ordinary
    rows or columns)."""
    marks = [[Mark.PRIMARY if 0 < v < threshold else Mark.SHOWN for v in row] for row in grid]
    if not grid:
        return marks
    width = len(grid[0])
    if any(len(row) != width for row in grid):
        raise ValueError("every row of a table has the same number of cells")
    lines = ([[(r, c) for c in range(width)] for r in range(len(grid))]
             + [[(r, c) for r in range(len(grid))] for c in range(width)])
    changed = True
    while changed:
        changed = False
        for line in lines:
            withheld = [cell for cell in line if marks[cell[0]][cell[1]] is not Mark.SHOWN]
            if len(withheld) != 1:
                continue
            shown = [cell for cell in line if marks[cell[0]][cell[1]] is Mark.SHOWN]
            if not any(grid[r][c] for r, c in shown):
                # Everything else in the line is zero: it cannot hold the line's total (that
                # would not be zero), so nothing here gives the withheld cell away.
                continue
            # The smallest other cell, preferring one that is not zero (a withheld zero beside
            # a 1 would still give the 1 away through the total).
            r, c = min(shown, key=lambda rc: (grid[rc[0]][rc[1]] == 0, grid[rc[0]][rc[1]], rc))
            marks[r][c] = Mark.SECONDARY
            changed = True
    return marks
