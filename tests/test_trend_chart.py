"""server.trend_chart: the SVG parsed back with xml.etree, positions of readings against the
threshold lines, marks of readings out of range, the summary in Italian and English, escaping
and the edge cases (no reading, one, all equal, thresholds missing, readings out of order)."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.trend_chart import (
    CHAR_EM,
    DOTS_UP_TO,
    MIN_TEXT_PX,
    NARROWEST_PX,
    font_size,
    nice_ticks,
    trend_svg,
)

NS = {"s": "http://www.w3.org/2000/svg"}
ROME = ZoneInfo("Europe/Rome")
START = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    # Our own output, not untrusted input.
    return ET.fromstring(svg)  # noqa: S314


def daily(values: list[float]) -> list[tuple[datetime, float]]:
    return [(START + timedelta(days=i), v) for i, v in enumerate(values)]


def threshold_y(root: ET.Element, kind: str) -> float:
    line = root.find(f"s:line[@class='threshold {kind}']", NS)
    assert line is not None, kind
    assert line.get("stroke-dasharray"), "thresholds are dashed"
    assert line.get("y1") == line.get("y2")
    return float(line.get("y1", "nan"))


def centre(mark: ET.Element) -> tuple[float, float]:
    """A circle's centre, or a triangle's (the mean of its corners, inside it)."""
    if mark.tag.endswith("circle"):
        return float(mark.get("cx", "nan")), float(mark.get("cy", "nan"))
    corners = [tuple(map(float, p.split(","))) for p in mark.get("points", "").split()]
    assert len(corners) == 3
    return sum(c[0] for c in corners) / 3, sum(c[1] for c in corners) / 3


def marks(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class", "").split() and
            set(cls.split()) <= set(e.get("class", "").split())]


def polyline(root: ET.Element) -> list[tuple[float, float]]:
    line = root.find("s:polyline[@class='line']", NS)
    assert line is not None
    return [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]  # type: ignore[misc]


def texts(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['s']}}}text") if cls in e.get("class", "")]


def test_readings_above_high_and_below_low_are_drawn_beyond_their_lines_as_triangles():
    # Systolic pressure against 90-140: 150 and 165 above, 85 below, the rest inside.
    values = [120.0, 150.0, 130.0, 85.0, 140.0, 90.0, 165.0]
    root = parse(trend_svg(daily(values), low=90, high=140, unit="mmHg",
                           label="Pressione sistolica", tz=ROME))
    high, low = threshold_y(root, "high"), threshold_y(root, "low")
    assert high < low, "the higher threshold is drawn higher (smaller y)"
    above, below = marks(root, "reading out high"), marks(root, "reading out low")
    assert len(above) == 2 and len(below) == 1
    # Out of range: a shape of its own (a triangle), not only another colour than the dots.
    assert all(m.tag.endswith("polygon") for m in above + below)
    for m in above:
        assert centre(m)[1] < high
    assert centre(below[0])[1] > low
    # A triangle points away from the range: its apex is its topmost corner above, its
    # lowest below.
    apex_up = [float(p.split(",")[1]) for p in above[0].get("points", "").split()]
    assert apex_up[0] == min(apex_up)
    apex_down = [float(p.split(",")[1]) for p in below[0].get("points", "").split()]
    assert apex_down[0] == max(apex_down)
    dots = [m for m in marks(root, "reading") if m.tag.endswith("circle")]
    assert len(dots) == 4, "120, 130, 140 and 90: on a threshold is in range"
    for d in dots:
        assert high - 0.11 <= centre(d)[1] <= low + 0.11
    # The band lies between the two lines.
    band = root.find("s:rect[@class='band']", NS)
    assert band is not None
    assert float(band.get("y", "nan")) == pytest.approx(high, abs=0.1)
    assert float(band.get("y", "0")) + float(band.get("height", "0")) == pytest.approx(low,
                                                                                      abs=0.2)
    # The line goes through every reading, in time order, left to right.
    line = polyline(root)
    assert len(line) == len(values)
    assert [x for x, _y in line] == sorted(x for x, _y in line)
    ys = [y for _x, y in line]
    assert ys.index(min(ys)) == values.index(max(values))


def test_axis_includes_thresholds_and_data_with_round_ticks():
    root = parse(trend_svg(daily([4.2, 5.1, 6.3]), low=3.9, high=10.0, unit="mmol/L",
                           label="Glicemia", tz=ROME, lang="en"))
    ticks = [float(t.text or "nan") for t in texts(root, "tick y")]
    assert ticks == sorted(ticks) and len(ticks) >= 3
    assert ticks[0] <= 3.9 and ticks[-1] >= 10.0
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5)
    # Every threshold and reading lies inside the plot, with some room to the edges.
    lines = root.findall("s:line", NS)
    grid = sorted(float(g.get("y1", "nan")) for g in lines if g.get("stroke") == "#d0d4d9")
    for y in (threshold_y(root, "high"), threshold_y(root, "low"), *(y for _x, y in
                                                                      polyline(root))):
        assert grid[0] < y < grid[-1]


def test_nice_ticks():
    assert nice_ticks(81.2, 178.8) == (75, 200, 25)
    assert nice_ticks(81.2, 158.8) == (80, 160, 20)
    assert nice_ticks(0.0, 1.0) == (0, 1, 0.25)
    first, last, step = nice_ticks(36.1, 36.9)
    assert step == 0.2 and first <= 36.1 and last >= 36.9


def test_title_and_summary_in_italian_and_english():
    values = [118.0, 146.0, 132.0, 88.0]
    # The last reading at 23:30 UTC on 4 December is 00:30 on the 5th in Rome.
    points = [(datetime(2026, 12, 1, 8, tzinfo=UTC), values[0]),
              (datetime(2026, 12, 2, 8, tzinfo=UTC), values[1]),
              (datetime(2026, 12, 3, 8, tzinfo=UTC), values[2]),
              (datetime(2026, 12, 4, 23, 30, tzinfo=UTC), values[3])]
    it = parse(trend_svg(points, low=90, high=140, unit="mmHg", label="Pressione sistolica",
                         tz=ROME, lang="it"))
    assert it.get("role") == "img"
    title, desc = it.find("s:title", NS), it.find("s:desc", NS)
    assert title is not None and desc is not None
    assert it.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Andamento: Pressione sistolica"
    assert desc.text == ("4 misurazioni, periodo 1 dic 2026 – 5 dic 2026. "
                         "Ultima: 88 mmHg (5 dic 2026). Intervallo da 90 a 140 mmHg. "
                         "2 misurazioni fuori dall'intervallo.")
    en = parse(trend_svg(points, low=90, high=140, unit="mmHg", label="Systolic pressure",
                         tz=ROME, lang="en"))
    assert en.findtext("s:title", namespaces=NS) == "Trend: Systolic pressure"
    assert en.findtext("s:desc", namespaces=NS) == (
        "4 readings, from 1 Dec 2026 to 5 Dec 2026. Latest: 88 mmHg (5 Dec 2026). "
        "Range 90 to 140 mmHg. 2 readings outside the range.")
    # Decimals as each language writes them.
    one = [(START, 36.6)]
    assert "36,6 °C" in (parse(trend_svg(one, low=None, high=37.5, unit="°C", label="T",
                                         tz=ROME)).findtext("s:desc", namespaces=NS) or "")
    assert "36.6 °C" in (parse(trend_svg(one, low=None, high=37.5, unit="°C", label="T",
                                         tz=ROME, lang="en")).findtext("s:desc",
                                                                       namespaces=NS) or "")


def test_date_ticks_in_the_time_zone_and_the_language():
    points = daily([120.0] * 14)
    it = [t.text for t in texts(parse(trend_svg(points, low=90, high=140, unit="mmHg",
                                                label="P", tz=ROME)), "tick x")]
    en = [t.text for t in texts(parse(trend_svg(points, low=90, high=140, unit="mmHg",
                                                label="P", tz=ROME, lang="en")), "tick x")]
    assert it and len(it) == len(en)
    assert all(t is not None and t.endswith(" dic") for t in it), it
    assert all(t is not None and t.endswith(" Dec") for t in en), en  # British English
    assert len(it) >= 3
    # A day's tick is at midnight in Rome (23:00 UTC the day before in winter): 8.5 hours
    # left of that day's reading at 07:30 UTC.
    root = parse(trend_svg(points, low=90, high=140, unit="mmHg", label="P", tz=ROME,
                           lang="en"))
    line = polyline(root)
    per_hour = (line[1][0] - line[0][0]) / 24
    for tick in texts(root, "tick x"):
        day = int((tick.text or "").split()[0])
        reading = line[day - 1][0]
        assert float(tick.get("x", "nan")) == pytest.approx(reading - 8.5 * per_hour, abs=0.2)


def test_text_is_escaped():
    label = 'Peso <b>"kg"</b> & \'altro\''
    unit = "<kg>"
    svg = trend_svg(daily([70.0, 71.5]), low=None, high=80, unit=unit, label=label, tz=ROME)
    assert "<b>" not in svg and "<kg>" not in svg
    root = parse(svg)
    assert root.findtext("s:title", namespaces=NS) == f"Andamento: {label}"
    assert "71,5 <kg>" in (root.findtext("s:desc", namespaces=NS) or "")


def test_no_readings_is_a_clear_empty_chart():
    for lang, words, summary in (("it", "Nessuna misurazione", "Ancora nessuna misurazione."),
                                 ("en", "No readings", "No readings yet.")):
        root = parse(trend_svg([], low=90, high=140, unit="mmHg", label="P", tz=ROME,
                               lang=lang))
        assert root.get("role") == "img"
        assert [t.text for t in root.iter(f"{{{NS['s']}}}text")] == [words]
        assert root.findtext("s:desc", namespaces=NS) == summary
        assert not marks(root, "reading") and root.find("s:polyline", NS) is None


def test_one_reading_and_equal_readings():
    root = parse(trend_svg([(START, 72.0)], low=None, high=None, unit="kg", label="Peso",
                           tz=ROME))
    (dot,) = marks(root, "reading")
    x, y = centre(dot)
    vb = [float(v) for v in (root.get("viewBox") or "").split()]
    assert 0 < x < vb[2] and 0 < y < vb[3]
    assert root.find("s:polyline", NS) is None
    assert "1 misurazione, 1 dic 2026." in (root.findtext("s:desc", namespaces=NS) or "")
    assert "Nessun intervallo impostato." in (root.findtext("s:desc", namespaces=NS) or "")
    assert root.find("s:rect[@class='band']", NS) is None
    assert root.find("s:line[@class='threshold high']", NS) is None

    flat = parse(trend_svg(daily([98.0] * 5), low=None, high=None, unit="%", label="SpO2",
                           tz=ROME))
    ys = {y for _x, y in polyline(flat)}
    assert len(ys) == 1
    ticks = [float((t.text or "nan").replace(",", ".")) for t in texts(flat, "tick y")]
    assert ticks[0] < 98 < ticks[-1], "a flat line sits inside a range around it"


def test_one_threshold_missing():
    only_low = parse(trend_svg(daily([95.0, 91.0, 97.0]), low=92, high=None, unit="%",
                               label="SpO2", tz=ROME))
    assert only_low.find("s:line[@class='threshold high']", NS) is None
    low = threshold_y(only_low, "low")
    (below,) = marks(only_low, "reading out low")
    assert centre(below)[1] > low
    band = only_low.find("s:rect[@class='band']", NS)
    assert band is not None
    # The band runs from the low line up to the top of the plot.
    assert float(band.get("y", "nan")) + float(band.get("height", "nan")) == pytest.approx(
        low, abs=0.2)
    assert "Limite inferiore 92 %." in (only_low.findtext("s:desc", namespaces=NS) or "")
    assert "1 misurazione fuori dall'intervallo." in (only_low.findtext("s:desc",
                                                                        namespaces=NS) or "")

    only_high = parse(trend_svg(daily([80.0, 120.0]), low=None, high=100, unit="bpm",
                                label="Pulse", tz=ROME, lang="en"))
    assert only_high.find("s:line[@class='threshold low']", NS) is None
    (above,) = marks(only_high, "reading out high")
    assert centre(above)[1] < threshold_y(only_high, "high")
    assert "Upper limit 100 bpm. 1 reading outside the range." in (
        only_high.findtext("s:desc", namespaces=NS) or "")


def test_readings_out_of_order_are_drawn_in_time_order():
    points = daily([110.0, 120.0, 130.0, 140.0])
    shuffled = [points[2], points[0], points[3], points[1]]
    a = trend_svg(points, low=90, high=150, unit="mmHg", label="P", tz=ROME)
    b = trend_svg(shuffled, low=90, high=150, unit="mmHg", label="P", tz=ROME)
    assert a == b
    ys = [y for _x, y in polyline(parse(b))]
    assert ys == sorted(ys, reverse=True), "values rising over time are drawn rising"
    assert "Ultima: 140 mmHg (4 dic 2026)." in (parse(b).findtext("s:desc", namespaces=NS)
                                                 or "")


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        trend_svg([(datetime(2026, 12, 1), 1.0)], low=None, high=None, unit="", label="x",
                  tz=ROME)


def test_a_year_of_daily_readings_stays_legible():
    values = [130 + 15 * math.sin(i / 9) for i in range(365)]
    root = parse(trend_svg(daily(values), low=90, high=140, unit="mmHg", label="P", tz=ROME))
    assert len(polyline(root)) == 365, "every reading is on the line: nothing downsampled"
    outside = sum(1 for v in values if v > 140)
    assert len(marks(root, "reading out high")) == outside > 0
    assert not [m for m in marks(root, "reading") if m.tag.endswith("circle")], \
        f"no dots for in-range readings beyond {DOTS_UP_TO}"
    line = root.find("s:polyline", NS)
    assert line is not None and float(line.get("stroke-width", "9")) <= 1.5
    # The date labels do not overlap: centres further apart than the widest label.
    size = float(root.get("font-size", "nan"))
    xs = texts(root, "tick x")
    assert len(xs) >= 3
    widest = max(len(t.text or "") for t in xs) * CHAR_EM * size
    centres = [float(t.get("x", "nan")) for t in xs]
    assert all(b - a > widest for a, b in itertools.pairwise(centres))
    # Months, with the year as the period spans two.
    assert all(t.text and t.text[-4:] in ("2026", "2027") for t in xs), [t.text for t in xs]


def test_text_size_stays_readable_on_a_phone():
    for width in (640, 480, 1000):
        assert font_size(width) * NARROWEST_PX / width >= MIN_TEXT_PX
    root = parse(trend_svg(daily([1.0, 2.0]), low=None, high=None, unit="", label="x",
                           tz=ROME))
    assert root.get("width") == "100%" and root.get("viewBox") == "0 0 640 240"
    assert float(root.get("font-size", "0")) * NARROWEST_PX / 640 >= MIN_TEXT_PX
    assert all(t.get("font-size") is None for t in root.iter(f"{{{NS['s']}}}text"))
    assert "style" not in trend_svg(daily([1.0, 2.0]), low=0, high=3, unit="", label="x",
                                    tz=ROME), "the CSP allows no style attribute"


def test_an_unknown_language_falls_back_to_italian():
    root = parse(trend_svg(daily([1.5]), low=None, high=None, unit="", label="x", tz=ROME,
                           lang="xx"))
    assert root.findtext("s:title", namespaces=NS) == "Andamento: x"
