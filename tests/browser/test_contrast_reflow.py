"""Non-text contrast and reflow, measured in Chromium on the pages themselves.

Contrast (WCAG 1.4.11): every control reached by Tab draws a focus outline of at least 3:1
against the background it is drawn on, and every text field's border is at least 3:1 against
its own fill and the background around it; the colours are the computed styles, so whatever
stylesheet sets them (casa.css's variables, bookings, records, kiosk, nurse, call) is measured.

Reflow (WCAG 1.4.10): at 320 px wide, with text at 200 % (the browser's default font at 32 px,
``Page.setFontSizes``), with a 24 px default font, and with the root's font size set to 200 %,
no patient page scrolls sideways: join (and its error), the refusals, the error page, the
pre-call check, the waiting room, the call and the end page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from server.config import Config
from server.staff import Role
from tests.browser.conftest import (
    Watched,
    book,
    enter_code,
    sign_in,
    wrong_code,
)
from tests.conftest import StaffFactory

NARROW = {"width": 320, "height": 640}
MEDIA_MS = 30_000
MAX_TABS = 80
MIN_CONTRAST = 3.0

# The colour behind an element: its ancestors' backgrounds, composited until an opaque one
# (the canvas is white). Contrast as WCAG 2 defines it.
COLOUR_JS = """
const parse = (c) => {
  const m = /rgba?\\(([^)]+)\\)/.exec(c);
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
};
const behind = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let colour = [255, 255, 255, 1];
  for (const c of layers.reverse()) colour = over(c, colour);
  return colour;
};
const lum = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const contrast = (a, b) => {
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
const classes = (el) => (typeof el.className === 'string' && el.className.trim()
  ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes(el);
"""

FOCUSED_JS = "() => {" + COLOUR_JS + """
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const ring = parse(s.outlineColor);
  const width = parseFloat(s.outlineWidth) || 0;
  const bg = behind(el.parentElement || el);
  return {name: name(el), style: s.outlineStyle, width,
          ratio: ring ? contrast(over(ring, bg), bg) : 0, colour: s.outlineColor,
          bg: 'rgb(' + bg.slice(0, 3).map(Math.round).join(',') + ')'};
}"""

FIELDS_JS = "() => {" + COLOUR_JS + """
  const out = [];
  const fields = document.querySelectorAll(
    'input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=range]),'
    + ' select, textarea');
  for (const el of fields) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
    const s = getComputedStyle(el);
    if (!(parseFloat(s.borderTopWidth) > 0)) continue;
    const border = parse(s.borderTopColor);
    const inside = behind(el);
    const outside = behind(el.parentElement);
    out.push({name: name(el), inside: contrast(over(border, inside), inside),
              outside: contrast(over(border, outside), outside), colour: s.borderTopColor});
  }
  return out;
}"""

OVERFLOW_JS = "() => {" + COLOUR_JS + """
  const root = document.documentElement;
  const width = root.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    // A box wider than the screen, or one whose text runs out of it.
    const spills = el.scrollWidth > el.clientWidth + 1
      && getComputedStyle(el).overflowX === 'visible';
    if (r.width && (r.right > width + 1 || spills) && !el.closest('.table-wrap')) {
      wide.push(name(el) + ' ' + Math.round(r.right - width) + 'px');
    }
  }
  return {over: root.scrollWidth - width, wide: wide.slice(0, 12)};
}"""


class Measure:
    """Walks pages with the keyboard and at large text sizes; collects every failure with the
    page it was seen on, so one run reports them all."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.failures: list[str] = []
        self.pages: list[Watched] = []
        self.checked: list[str] = []

    async def page(self, locale: str = "it-IT") -> Watched:
        context = await self.browser.new_context(viewport=NARROW, locale=locale,
                                                 permissions=["camera", "microphone"])
        w = Watched(await context.new_page())
        self.pages.append(w)
        return w

    async def contrast(self, w: Watched, label: str) -> None:
        for f in await w.page.evaluate(FIELDS_JS):
            if min(f["inside"], f["outside"]) < MIN_CONTRAST:
                self.failures.append(f"{label}: field border {f['name']} {f['colour']}: "
                                     f"{f['inside']:.2f}:1 inside, {f['outside']:.2f}:1 around")
        await w.page.evaluate("() => { document.activeElement && document.activeElement.blur();"
                              " window.scrollTo(0, 0); }")
        first = None
        for _ in range(MAX_TABS):
            await w.page.keyboard.press("Tab")
            seen = await w.page.evaluate(FOCUSED_JS)
            if seen is None:
                continue
            if seen["name"] == first:
                break
            first = first or seen["name"]
            if seen["style"] == "none" or seen["width"] < 2 or seen["ratio"] < MIN_CONTRAST:
                self.failures.append(
                    f"{label}: focus on {seen['name']}: {seen['style']} {seen['width']}px "
                    f"{seen['colour']} on {seen['bg']} = {seen['ratio']:.2f}:1")
        self.checked.append(label)

    async def reflow(self, w: Watched, label: str) -> None:
        cdp = await w.page.context.new_cdp_session(w.page)
        settings = (("text at 200 %", {"standard": 32, "fixed": 26}, ""),
                    ("24 px default font", {"standard": 24, "fixed": 20}, ""),
                    ("html font-size 200 %", {"standard": 16, "fixed": 13}, "200%"))
        try:
            for how, sizes, root in settings:
                await cdp.send("Page.setFontSizes", {"fontSizes": sizes})
                await w.page.evaluate(
                    "(size) => { document.documentElement.style.fontSize = size; }", root)
                # Two frames: the new sizes are laid out before measuring.
                await w.page.evaluate("() => new Promise((r) => requestAnimationFrame("
                                      "() => requestAnimationFrame(r)))")
                seen = await w.page.evaluate(OVERFLOW_JS)
                if seen["over"] > 0:
                    self.failures.append(f"{label}, {how}: scrolls {seen['over']}px sideways "
                                         f"({', '.join(seen['wide'])})")
        finally:
            await cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 16, "fixed": 13}})
            await w.page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
            await cdp.detach()

    async def both(self, w: Watched, label: str) -> None:
        await self.contrast(w, label)
        await self.reflow(w, label)


@pytest.mark.timeout(240)
async def test_focus_rings_field_borders_and_reflow_on_every_patient_page(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, link, code = await book(config, gp.id, timedelta(minutes=-5))
    _, _, _, early_link, _ = await book(config, gp.id, timedelta(hours=3), given="Anna")
    _, _, _, old_link, _ = await book(config, gp.id, timedelta(hours=-3), given="Rosa")
    m = Measure(browser)

    w = await m.page()
    await w.page.goto(live + "/join")
    await m.both(w, "join")
    await w.page.click("details.lang-switch > summary")
    await m.contrast(w, "join, language list open")
    await w.page.goto(live + "/join")
    await enter_code(w, wrong_code(code))
    await w.page.wait_for_selector("#join-error")
    await m.both(w, "join, wrong code")
    await w.page.goto(f"{live}/join/{early_link}")
    await m.both(w, "join link, too early")
    await w.page.goto(f"{live}/join/{old_link}")
    await m.both(w, "join link, expired")
    await w.page.goto(f"{live}/no-such-page")
    await m.both(w, "error page")
    await w.page.goto(live + "/precall")
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    await m.both(w, "device check alone")

    patient = await m.page()
    await patient.page.goto(f"{live}/join/{link}")
    await patient.page.wait_for_url(f"**/consultation/{room}")
    await patient.page.wait_for_selector("#net-result[data-state]:not([data-state=pending])",
                                         timeout=MEDIA_MS)
    await m.both(patient, "pre-call check")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    await m.both(patient, "waiting room")

    doc = await m.page()
    await sign_in(doc, live, gp.email)
    await doc.page.goto(live + "/dashboard")
    await m.contrast(doc, "dashboard")
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.click("#waiting-list li.waiting button.admit")
    await patient.page.wait_for_selector("#remotes .tile video", timeout=MEDIA_MS)
    await patient.page.click("#btn-chat")
    await m.both(patient, "call with chat")
    await m.contrast(doc, "call, clinician")
    await patient.page.click("#btn-hangup")
    await patient.page.wait_for_selector("#confirm[open]")
    await m.reflow(patient, "hang-up confirmation")
    await patient.page.click("#confirm-yes")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    await m.both(patient, "end page")

    assert not m.failures, "\n".join(m.failures)
    assert len(m.checked) >= 13
    for page in m.pages:
        page.assert_clean()


@pytest.mark.timeout(180)
async def test_focus_rings_and_field_borders_on_staff_pages(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    """Bookings, kiosks, the nurse's console, records: the same rule for staff pages."""
    gp = await make_staff(Role.GP, ("san-siro",))
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    visit_id, _, _, _, _ = await book(config, gp.id, timedelta(minutes=-5))
    m = Measure(browser)

    w = await m.page()
    await w.page.goto(live + "/login")
    await m.contrast(w, "login")
    await w.page.goto(live + "/kiosk/enrol")
    await m.contrast(w, "kiosk enrolment")
    co = await m.page()
    await sign_in(co, live, coordinator.email)
    for path in ("/home", "/bookings/calendar", "/bookings/today", "/bookings/new",
                 f"/bookings/{visit_id}", "/kiosks"):
        await co.page.goto(live + path)
        await m.contrast(co, path)
    n = await m.page()
    await sign_in(n, live, nurse.email)
    await n.page.goto(live + "/nurse")
    await m.contrast(n, "/nurse")
    doc = await m.page()
    await sign_in(doc, live, gp.email)
    for path in ("/home", "/records/inbox"):
        await doc.page.goto(live + path)
        await m.contrast(doc, path)

    assert not m.failures, "\n".join(m.failures)
    assert len(m.checked) == 11
    for page in m.pages:
        page.assert_clean()
