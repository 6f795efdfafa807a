"""A measurement's trend on the staff pages. ``trend`` has the signature of
``server.trend_chart.trend_svg`` (an accessible inline SVG with the limits drawn); until that
module is part of Casa it draws the readings as a plain list, and the swap is the one import
this module's ``chart`` calls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from markupsafe import Markup

# Most recent readings listed; the chart that replaces the list draws them all.
LISTED = 30


def _beyond(v: float, low: float | None, high: float | None) -> bool:
    return (low is not None and v < low) or (high is not None and v > high)


def trend(points: Sequence[tuple[datetime, float]], *, low: float | None, high: float | None,
          unit: str, label: str, tz: tzinfo, width: int = 640, height: int = 240,
          lang: str = "it") -> str:
    limits = " – ".join(f"{v:g}" for v in (low, high) if v is not None)
    items = Markup("").join(
        Markup('<li><time datetime="{}">{}</time> <strong class="{}">{}</strong> {}</li>').format(
            at.isoformat(), at.astimezone(tz).strftime("%d/%m %H:%M"),
            "m-beyond" if _beyond(v, low, high) else "", f"{v:g}", unit)
        for at, v in reversed(points[-LISTED:]))
    head = Markup("<strong>{}</strong>").format(label)
    if limits:
        head += Markup(" ({} {})").format(limits, unit)
    return str(Markup('<div class="m-trend-list"><p>{}</p><ol>{}</ol></div>').format(head,
                                                                                   items))


def chart(points: Sequence[tuple[datetime, float]], *, low: float | None, high: float | None,
          unit: str, label: str, tz: tzinfo, lang: str) -> Markup:
    """The trend as markup for a template: ``trend`` escapes every word it draws."""
    drawn = trend(points, low=low, high=high, unit=unit, label=label, tz=tz, lang=lang)
    return Markup(drawn)  # noqa: S704 (made above from escaped parts only)
