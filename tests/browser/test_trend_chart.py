"""The trend chart in Chromium on a 360 px phone: it fits the screen and its smallest text is
still 11 CSS pixels tall once the picture is scaled down."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.trend_chart import trend_svg
from tests.browser.conftest import PHONE, open_page

MEASURE = """
() => {
  const svg = document.querySelector('svg');
  const box = svg.getBoundingClientRect();
  // Text is sized in the viewBox's units: what a reader sees is the computed size times the
  // scale the browser draws the picture at.
  const scale = svg.getScreenCTM().a;
  const ticks = [...svg.querySelectorAll('text.tick')].map((t) => ({
    px: parseFloat(getComputedStyle(t).fontSize) * scale,
    height: t.getBoundingClientRect().height,
  }));
  return { left: box.left, right: box.right, width: box.width,
           viewport: document.documentElement.clientWidth,
           scrolls: document.documentElement.scrollWidth > document.documentElement.clientWidth,
           name: svg.querySelector('title').textContent, ticks };
}
"""


async def test_the_chart_fits_a_phone_and_its_text_stays_readable(browser: Any) -> None:
    start = datetime(2026, 1, 1, 7, 30, tzinfo=UTC)
    points = [(start + timedelta(days=i), 130 + 15 * math.sin(i / 9)) for i in range(365)]
    svg = trend_svg(points, low=90, high=140, unit="mmHg", label="Pressione sistolica",
                    tz=ZoneInfo("Europe/Rome"))
    w = await open_page(browser, viewport=PHONE)
    # The page's usual margins on a phone: 16 px each side leaves 328 px for the chart.
    await w.page.set_content(
        "<!doctype html><html lang=it><meta name=viewport content='width=device-width'>"
        "<body style='margin:0 16px'><h1>Andamento</h1>" + svg + "</body></html>")
    m = await w.page.evaluate(MEASURE)
    assert m["viewport"] == 360 and not m["scrolls"], m
    assert m["left"] >= 0 and m["right"] <= 360 and m["width"] == 328, m
    assert m["name"] == "Andamento: Pressione sistolica"
    assert len(m["ticks"]) >= 6, m
    for tick in m["ticks"]:
        assert tick["px"] >= 11, m
        assert tick["height"] >= 11, m
    w.assert_clean()
