"""A measurement's trend on the staff pages: the chart drawn by ``server.trend_chart.trend_svg``
(an accessible inline SVG with the patient's limits drawn) and, under it, the latest readings
as numbers, because a chart shows the shape but a nurse calling the patient needs the values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from markupsafe import Markup

from server.trend_chart import trend_svg

# Most recent readings listed under the chart, newest first; the chart draws them all.
LISTED = 7


def _beyond(v: float, low: float | None, high: float | None) -> bool:
    return (low is not None and v < low) or (high is not None and v > high)


def latest(points: Sequence[tuple[datetime, float]], *, low: float | None, high: float | None,
           unit: str, tz: tzinfo) -> Markup:
    """The last readings as a list; one beyond a limit is marked in words by its class's CSS
    and in bold, not by colour alone."""
    newest = sorted(points, key=lambda p: p[0])[-LISTED:]
    items = Markup("").join(
        Markup('<li><time datetime="{}">{}</time> <strong class="{}">{}</strong> {}</li>').format(
            at.isoformat(), at.astimezone(tz).strftime("%d/%m %H:%M"),
            "m-beyond" if _beyond(v, low, high) else "", f"{v:g}", unit)
        for at, v in reversed(newest))
    return Markup('<ol class="m-trend-list">{}</ol>').format(items) if newest else Markup("")


def chart(points: Sequence[tuple[datetime, float]], *, low: float | None, high: float | None,
          unit: str, label: str, tz: tzinfo, lang: str) -> Markup:
    """The trend as markup for a template: ``trend_svg`` escapes every word it draws."""
    drawn = trend_svg(points, low=low, high=high, unit=unit, label=label, tz=tz, lang=lang)
    svg = Markup(drawn)  # noqa: S704 (made from escaped parts only)
    return Markup('<figure class="m-trend">{}{}</figure>').format(
        svg, latest(points, low=low, high=high, unit=unit, tz=tz))
