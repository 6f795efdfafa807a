"""The report API's query and answer, as msgspec Structs (``server.openapi`` documents them)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Code = Annotated[str, Meta(min_length=1, max_length=100)]


class ReportQuery(msgspec.Struct, kw_only=True):
    from_: Annotated[date | None, Meta(description="first day, Milan (default: the first of "
                                                   "last month)")] = msgspec.field(
        default=None, name="from")
    to: Annotated[date | None, Meta(description="last day, included (default: the end of "
                                                "last month)")] = None
    centre: Annotated[Code | None, Meta(description="one centre (default: every centre "
                                                    "the caller reports on)")] = None
    format: Literal["json", "csv"] = "json"


class ReportCell(msgspec.Struct):
    # None when withheld; ``shown`` is what is published ("<5", "x", the figure).
    value: int | float | None
    shown: str
    suppressed: Literal["primary", "secondary"] | None = None


class ReportRow(msgspec.Struct):
    key: str
    label: str
    total: bool
    cells: list[ReportCell]


class ReportTable(msgspec.Struct):
    key: str
    title: str
    columns: list[str]
    column_titles: list[str]
    rows: list[ReportRow]


class ReportPeriod(msgspec.Struct):
    from_: date = msgspec.field(name="from")
    to: date


class ActivityReport(msgspec.Struct):
    period: ReportPeriod
    centres: list[str]
    suppression_threshold: int
    tables: list[ReportTable]
    not_recorded: list[str]
