"""A measurement's trend as inline SVG, drawn on the server: no script and no ``style``
attribute (the pages' CSP allows neither), only presentation attributes.

What it draws: the readings in time order as a thin line, the alert thresholds as dashed lines
around a shaded in-range band, and every reading outside the range as a triangle (pointing up
above ``high``, down below ``low``), so the range is read from the shape and not from colour
alone. In-range readings get a dot only when there are few of them (``DOTS_UP_TO``): a year of
daily readings is a line with its out-of-range triangles. Nothing is downsampled: 365 points
are a few kilobytes of polyline and every out-of-range reading stays visible.

The picture scales to its container's width (``viewBox``, ``width="100%"``); text is sized in
the viewBox's units so that it is still at least ``MIN_TEXT_PX`` CSS pixels when the chart is
drawn ``NARROWEST_PX`` wide (a 360 px phone less the page's margins). Dates are written in the
given time zone, numbers and dates as ``lang`` writes them (Babel's CLDR data), and the
accessible title and description (the chart's summary for a screen reader) come from the
staff catalogues (``web/translations/{it,en}/LC_MESSAGES/trends.po``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from xml.sax.saxutils import escape, quoteattr

from babel.dates import format_skeleton
from babel.numbers import format_decimal

from server.consultations.languages import cldr_locale
from web.i18n import DEFAULT_LANGUAGE, LANGUAGES, Catalogues

NARROWEST_PX = 328
MIN_TEXT_PX = 11
DOTS_UP_TO = 60
# Average advance of a digit or letter in a sans-serif face, in ems: to keep labels apart.
CHAR_EM = 0.6

LINE = "#1f5fa8"
IN_RANGE_FILL = "#2e7d32"
OUT_FILL = "#b3261e"
BAND_FILL = "#e3f1e4"
THRESHOLD = "#2e5e31"
GRID = "#d0d4d9"
TEXT = "#1f2328"

Point = tuple[datetime, float]


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def font_size(width: int) -> int:
    """The text size in viewBox units that is ``MIN_TEXT_PX`` at ``NARROWEST_PX`` wide."""
    return max(12, math.ceil(MIN_TEXT_PX * width / NARROWEST_PX))


def _number(value: float, lang: str, decimals: int = 2) -> str:
    pattern = "#,##0." + "#" * decimals if decimals > 0 else "#,##0"
    return str(format_decimal(round(value, decimals) + 0.0, format=pattern,
                              locale=cldr_locale(lang)))


def nice_ticks(low: float, high: float, count: int = 4) -> tuple[float, float, float]:
    """(first, last, step) of round tick values covering [low, high] in about ``count``
    steps: a step of 1, 2, 2.5 or 5 times a power of ten."""
    if high <= low:
        raise ValueError("empty range")
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    return first, last, step


def _decimals(step: float) -> int:
    for d in range(0, 4):
        if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-9:
            return d
    return 3


def y_range(values: Sequence[float], low: float | None,
            high: float | None) -> tuple[float, float, float]:
    """The y axis: every value and threshold, 8 % of the span of padding each side (a unit
    when all are equal), widened to round ticks."""
    every = [*values, *(t for t in (low, high) if t is not None)]
    lo, hi = min(every), max(every)
    pad = (hi - lo) * 0.08 if hi > lo else max(1.0, abs(hi) * 0.05)
    return nice_ticks(lo - pad, hi + pad)


# Candidate tick spacings, finest first: hours, days, months.
_HOURS = (1, 2, 3, 6, 12)
_DAYS = (1, 2, 3, 4, 7, 14)
_MONTHS = (1, 2, 3, 6, 12)


def _ticks_hours(start: datetime, end: datetime, tz: tzinfo, step: int) -> list[datetime]:
    # Counted in absolute hours: a DST change moves the labels, never the spacing.
    t = start.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    out: list[datetime] = []
    while t <= end:
        local = t.astimezone(tz)
        if t >= start and local.hour % step == 0:
            out.append(local)
        t += timedelta(hours=1)
    return out


def _local_midnight(day: datetime, tz: tzinfo) -> datetime:
    naive = datetime(day.year, day.month, day.day)
    return naive.replace(tzinfo=tz)


def _ticks_days(start: datetime, end: datetime, tz: tzinfo, step: int) -> list[datetime]:
    local = start.astimezone(tz)
    day = local.date()
    out: list[datetime] = []
    while True:
        t = _local_midnight(datetime(day.year, day.month, day.day), tz)
        if t > end:
            return out
        if t >= start:
            out.append(t)
        day += timedelta(days=step)


def _ticks_months(start: datetime, end: datetime, tz: tzinfo, step: int) -> list[datetime]:
    local = start.astimezone(tz)
    year, month = local.year, local.month
    out: list[datetime] = []
    while True:
        t = datetime(year, month, 1).replace(tzinfo=tz)
        if t > end:
            return out
        if t >= start and (month - 1) % step == 0:
            out.append(t)
        month += 1
        if month > 12:
            year, month = year + 1, 1


def time_ticks(start: datetime, end: datetime, tz: tzinfo, lang: str, room: float,
               size: float) -> list[tuple[datetime, str]]:
    """Ticks on the time axis and their labels: the finest spacing among hours, days and
    months whose labels fit side by side in ``room`` units of text ``size``."""
    locale = cldr_locale(lang)
    years = start.astimezone(tz).year != end.astimezone(tz).year
    plans: list[tuple[Callable[..., list[datetime]], int, str]] = [
        *((_ticks_hours, s, "Hm") for s in _HOURS),
        *((_ticks_days, s, "yMMMd" if years else "MMMd") for s in _DAYS),
        *((_ticks_months, s, "yMMM" if years else "MMM") for s in _MONTHS)]
    for make, step, skeleton in plans:
        if make is _ticks_hours and end - start >= timedelta(days=1):
            continue
        ticks = make(start, end, tz, step)
        if not ticks:
            continue
        labels = [str(format_skeleton(skeleton, t.astimezone(tz), locale=locale))
                  for t in ticks]
        widest = max(len(label) for label in labels) * CHAR_EM * size + size
        if len(ticks) * widest <= room:
            return list(zip(ticks, labels, strict=True))
    return []


def _attrs(attributes: dict[str, object]) -> str:
    """Escaped attributes: ``class_`` is ``class``, ``stroke_width`` is ``stroke-width``;
    numbers to a tenth of a unit."""
    return "".join(f" {k.rstrip('_').replace('_', '-')}="
                   + quoteattr(_f(v) if isinstance(v, float) else str(v))
                   for k, v in attributes.items())


def _el(tag: str, text: str | None, **attributes: object) -> str:
    """An element with its escaped text, or empty."""
    if text is None:
        return f"<{tag}{_attrs(attributes)}/>"
    return f"<{tag}{_attrs(attributes)}>{escape(text)}</{tag}>"


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _triangle(x: float, y: float, r: float, up: bool) -> str:
    d = 1 if up else -1
    pts = [(x, y - d * r), (x + r * 0.95, y + d * r * 0.65), (x - r * 0.95, y + d * r * 0.65)]
    return " ".join(f"{_f(px)},{_f(py)}" for px, py in pts)


def trend_svg(points: Sequence[tuple[datetime, float]], *, low: float | None,
              high: float | None, unit: str, label: str, tz: tzinfo, width: int = 640,
              height: int = 240, lang: str = "it") -> str:
    """The trend of one measurement as an ``<svg>`` element (see the module's docstring).
    ``points`` are (instant, value) in any order; instants must be aware. A value that is
    not a finite number is left out."""
    if any(at.tzinfo is None or at.utcoffset() is None for at, _ in points):
        raise ValueError("reading times must carry their time zone")
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    readings = sorted((p for p in points if math.isfinite(p[1])), key=lambda p: p[0])
    catalogues = Catalogues.load()
    _, n_ = catalogues.gettext(lang), catalogues.ngettext(lang)
    locale = cldr_locale(lang)
    size = font_size(width)
    digest = hashlib.sha256(repr((readings, low, high, unit, label, width, height, lang,
                                  str(tz))).encode()).hexdigest()[:10]
    ids = f"trend-{digest}"

    def day(at: datetime) -> str:
        return str(format_skeleton("yMMMd", at.astimezone(tz), locale=locale))

    def value_text(v: float) -> str:
        return f"{_number(v, lang)} {unit}".strip()

    title = _("Trend: %(label)s", label=label)
    if not readings:
        desc = _("No readings yet.")
    else:
        first, last = readings[0][0], readings[-1][0]
        parts = [n_("%(num)d reading", "%(num)d readings", len(readings)) + ", "
                 + (day(first) if day(first) == day(last)
                    else _("from %(first)s to %(last)s", first=day(first), last=day(last)))
                 + ".",
                 _("Latest: %(value)s (%(day)s).", value=value_text(readings[-1][1]),
                   day=day(last))]
        outside = sum(1 for _t, v in readings
                      if (high is not None and v > high) or (low is not None and v < low))
        if low is not None and high is not None:
            parts.append(_("Range %(low)s to %(high)s.", low=_number(low, lang),
                           high=value_text(high)))
        elif high is not None:
            parts.append(_("Upper limit %(high)s.", high=value_text(high)))
        elif low is not None:
            parts.append(_("Lower limit %(low)s.", low=value_text(low)))
        else:
            parts.append(_("No range set."))
        if low is not None or high is not None:
            parts.append(n_("%(num)d reading outside the range.",
                            "%(num)d readings outside the range.", outside))
        desc = " ".join(parts)

    svg = _attrs({"xmlns": "http://www.w3.org/2000/svg", "viewBox": f"0 0 {width} {height}",
                  "width": "100%", "role": "img", "aria_labelledby": f"{ids}-title {ids}-desc",
                  "class_": "trend-chart", "font_family": "system-ui, sans-serif",
                  "font_size": size, "fill": TEXT})
    out = [f"<svg{svg}>",
           _el("title", title, id=f"{ids}-title"),
           _el("desc", desc, id=f"{ids}-desc")]
    if not readings:
        out.append(_el("rect", None, x=0.5, y=0.5, width=width - 1, height=height - 1,
                       fill="none", stroke=GRID))
        out.append(_el("text", _("No readings"), x=width / 2, y=height / 2,
                       text_anchor="middle", dominant_baseline="middle", class_="empty"))
        out.append("</svg>")
        return "".join(out)

    y_first, y_last, y_step = y_range([v for _t, v in readings], low, high)
    decimals = _decimals(y_step)
    y_labels = [(y_first + i * y_step, _number(y_first + i * y_step, lang, decimals))
                for i in range(round((y_last - y_first) / y_step) + 1)]
    label_w = max(len(t) for _v, t in y_labels) * CHAR_EM * size
    box = _Box(left=math.ceil(label_w + size * 0.6), top=size * 0.8,
               right=width - size * 0.9, bottom=height - size * 1.8)

    t0, t1 = readings[0][0], readings[-1][0]
    if t1 == t0:
        # One instant: put it in the middle of a day around it.
        t0, t1 = t0 - timedelta(hours=12), t1 + timedelta(hours=12)
    span = (t1 - t0).total_seconds()

    def x_of(at: datetime) -> float:
        return box.left + (at - t0).total_seconds() / span * box.width

    def y_of(v: float) -> float:
        return box.bottom - (v - y_first) / (y_last - y_first) * box.height

    # Grid and value ticks.
    for v, text in y_labels:
        y = y_of(v)
        out.append(_el("line", None, x1=box.left, x2=box.right, y1=y, y2=y, stroke=GRID,
                       stroke_width=1))
        out.append(_el("text", text, x=box.left - size * 0.35, y=y + size * 0.35,
                       text_anchor="end", class_="tick y"))
    # The in-range band and the thresholds.
    if low is not None or high is not None:
        band_top = y_of(high) if high is not None else box.top
        band_bottom = y_of(low) if low is not None else box.bottom
        out.append(_el("rect", None, class_="band", x=box.left, y=band_top, width=box.width,
                       height=band_bottom - band_top, fill=BAND_FILL))
    for kind, t in (("high", high), ("low", low)):
        if t is not None:
            y = y_of(t)
            out.append(_el("line", None, class_=f"threshold {kind}", x1=box.left, x2=box.right,
                           y1=y, y2=y, stroke=THRESHOLD, stroke_width=2,
                           stroke_dasharray="8 6"))
    # Time ticks, below the plot; a label that would leave the picture is left out.
    for at, text in time_ticks(t0, t1, tz, lang, box.width, size):
        x = x_of(at)
        half = len(text) * CHAR_EM * size / 2
        if x - half < 0 or x + half > width:
            continue
        out.append(_el("line", None, x1=x, x2=x, y1=box.bottom, y2=box.bottom + size * 0.3,
                       stroke=TEXT))
        out.append(_el("text", text, x=x, y=box.bottom + size * 1.3, text_anchor="middle",
                       class_="tick x"))
    out.append(_el("line", None, x1=box.left, x2=box.right, y1=box.bottom, y2=box.bottom,
                   stroke=TEXT))
    # The readings: the line, then the marks on top of it.
    coords = [(x_of(at), y_of(v), v) for at, v in readings]
    many = len(readings) > DOTS_UP_TO
    if len(coords) > 1:
        out.append(_el("polyline", None, class_="line", fill="none", stroke=LINE,
                       stroke_width=1.5 if many else 2.5, stroke_linejoin="round",
                       points=" ".join(f"{_f(x)},{_f(y)}" for x, y, _v in coords)))
    radius = size * (0.3 if many else 0.4)
    for x, y, v in coords:
        above, below = high is not None and v > high, low is not None and v < low
        if above or below:
            out.append(_el("polygon", None, class_="reading out " + ("high" if above else "low"),
                           fill=OUT_FILL, stroke="none" if many else "#ffffff", stroke_width=1,
                           points=_triangle(x, y, radius * 1.5, above)))
        elif not many:
            out.append(_el("circle", None, class_="reading", cx=x, cy=y, r=radius,
                           fill=IN_RANGE_FILL))
    out.append("</svg>")
    return "".join(out)
