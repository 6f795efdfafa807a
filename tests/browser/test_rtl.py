"""Arabic, right to left: the patient's pages at 360 px mirror the Italian ones (measured on
the boxes Chromium lays out, with screenshots of both kept under the test's tmp_path); every
patient action is an icon and a word; the language choosers fit a phone; and the pages' font
stack draws every script of Casa's twelve languages with real glyphs, not empty boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from server.consultations.languages import PATIENT_LANGUAGES
from server.staff import Role
from tests.browser.conftest import (
    PHONE,
    Visit,
    Watched,
    book,
    fits_width,
    open_page,
    sign_in,
    soon,
)
from tests.browser.test_call import LAPTOP, MEDIA_MS
from tests.conftest import StaffFactory
from web.i18n import LANGUAGE_COOKIE

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
# Layout rounding: a box may land a pixel off its mirror image.
TOLERANCE = 2.0


@dataclass
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def end(self) -> float:
        return self.x + self.width


async def box(w: Watched, selector: str) -> Box:
    found = await w.page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not laid out"
    return Box(found["x"], found["y"], found["width"], found["height"])


async def page_width(w: Watched) -> float:
    return float(await w.page.evaluate("() => document.documentElement.clientWidth"))


async def patient_page(browser: Any, live: str, lang: str) -> Watched:
    w = await open_page(browser)
    await w.page.context.add_cookies([{"name": LANGUAGE_COOKIE, "value": lang, "url": live}])
    return w


async def direction_is(w: Watched, lang: str) -> None:
    want = "rtl" if lang == "ar" else "ltr"
    assert await w.page.locator(f"html[dir={want}][lang={lang}]").count() == 1


async def every_action_has_icon_and_word(w: Watched, scope: str) -> int:
    """Every visible button or button-like link in ``scope`` shows an aria-hidden icon and a
    word; returns how many were looked at."""
    found = await w.page.evaluate(
        """(scope) => [...document.querySelectorAll(scope + ' :is(button, a.button)')]
             .filter((b) => b.getClientRects().length
                            && getComputedStyle(b).visibility !== 'hidden')
             .map((b) => ({id: b.id || b.outerHTML.slice(0, 60),
                           icon: !!b.querySelector('svg.icon[aria-hidden=true]'),
                           word: b.innerText.trim()}))""", scope)
    bare = [b["id"] for b in found if not b["icon"] or not b["word"]]
    assert not bare, f"actions without an icon and a word: {bare}"
    return len(found)


def start_edges_mirror(ltr: Box, rtl: Box, width: float, what: str) -> None:
    """The box starts on the other side, as far from that edge: its right edge in Arabic where
    its left edge was in Italian (words differ in length between the two languages, so only
    the start edge is comparable for a box sized by its text)."""
    assert abs(rtl.end - (width - ltr.x)) <= TOLERANCE, \
        f"{what}: starts at {ltr.x:.0f} in Italian, ends at {rtl.end:.0f} in Arabic (width {width})"


def boxes_mirror(ltr: Box, rtl: Box, width: float, what: str) -> None:
    """A box of fixed size: x_rtl = width - (x_ltr + w)."""
    assert abs(rtl.width - ltr.width) <= TOLERANCE, f"{what}: {ltr.width} wide, then {rtl.width}"
    assert abs(rtl.x - (width - ltr.end)) <= TOLERANCE, \
        f"{what}: x {rtl.x:.0f} in Arabic, {width - ltr.end:.0f} expected from Italian"


async def icon_before_word(w: Watched, button: str, lang: str) -> None:
    """The icon sits on the word's start side: left of it in Italian, right of it in Arabic."""
    icon, word = await box(w, f"{button} > svg.icon"), await box(w, f"{button} > span")
    if lang == "ar":
        assert icon.x >= word.end - TOLERANCE, f"{button}: icon not right of the word"
    else:
        assert icon.end <= word.x + TOLERANCE, f"{button}: icon not left of the word"


async def icon_above_word(w: Watched, button: str) -> None:
    """The icon stands over its word, centred on it, in either direction."""
    icon, word = await box(w, f"{button} > svg.icon"), await box(w, f"{button} > span")
    assert icon.y + icon.height <= word.y + TOLERANCE, f"{button}: icon not above the word"
    assert abs((icon.x + icon.width / 2) - (word.x + word.width / 2)) <= TOLERANCE, \
        f"{button}: icon not centred over the word"


async def arrows_point_the_reading_way(w: Watched, selector: str, lang: str) -> None:
    transform = await w.page.eval_on_selector(selector, "e => getComputedStyle(e).transform")
    flipped = transform == "matrix(-1, 0, 0, 1, 0, 0)"
    assert flipped == (lang == "ar"), f"{selector}: transform {transform} in {lang}"


async def in_order(w: Watched, selectors: list[str], lang: str) -> None:
    """Controls on one row follow the reading direction: left to right in Italian, right to
    left in Arabic."""
    boxes = [await box(w, s) for s in selectors]
    assert len({round(b.y + b.height / 2) for b in boxes}) == 1, f"{selectors}: not on one row"
    xs = [b.x for b in boxes]
    ordered = sorted(xs, reverse=lang == "ar")
    assert xs == ordered, f"{selectors} at {xs} in {lang}"


@dataclass
class Seen:
    """What one language's patient pages measured."""

    width: float
    boxes: dict[str, Box]


async def walk_patient(browser: Any, live: str, lang: str, link: str, room: str, gp_email: str,
                       shots: Path) -> Seen:
    """A patient in ``lang`` from the invitation link through the pre-call check and the
    waiting room into the call with its chat open; a clinician (in Italian) lets them in.
    Each stage: right direction, nothing wider than the screen, a screenshot, the boxes."""
    boxes: dict[str, Box] = {}
    w = await patient_page(browser, live, lang)
    await w.page.goto(f"{live}/join/{link}")
    await w.page.wait_for_url(f"**/consultation/{room}")
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    await direction_is(w, lang)
    await fits_width(w)
    width = await page_width(w)
    await w.page.screenshot(path=shots / f"precall-{lang}.png", full_page=True)
    assert await every_action_has_icon_and_word(w, "#stage-precall") >= 3
    for name, sel in {"precall dot": "#check-camera .dot", "precall card": "#check-camera",
                      "precall preview": "#preview", "check again": "#precall-retry",
                      "speaker test": "#speaker-play"}.items():
        boxes[name] = await box(w, sel)
    await icon_before_word(w, "#precall-continue", lang)
    await arrows_point_the_reading_way(w, "#precall-continue svg.icon", lang)

    await w.page.click("#precall-continue")
    await w.page.wait_for_selector("#stage-waiting:not([hidden])")
    await fits_width(w)
    await w.page.screenshot(path=shots / f"waiting-{lang}.png", full_page=True)
    assert await every_action_has_icon_and_word(w, "#stage-waiting") == 1
    boxes["leave"] = await box(w, "#waiting-leave")
    boxes["next step"] = await box(w, ".next-steps li")
    await icon_before_word(w, "#waiting-leave", lang)

    doc = await open_page(browser, viewport=LAPTOP)
    await sign_in(doc, live, gp_email)
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.click("#waiting-list li.waiting button.admit")
    await w.page.wait_for_selector("#stage-call:not([hidden])")
    await w.page.wait_for_selector("#remotes .tile video", timeout=MEDIA_MS)
    await w.page.wait_for_function(
        "() => document.querySelector('#remotes .tile video').videoWidth > 0", timeout=MEDIA_MS)
    await fits_width(w)
    await w.page.screenshot(path=shots / f"call-{lang}.png")
    assert await every_action_has_icon_and_word(w, "#stage-call .controls") == 4
    for name, sel in {"self view": "#self-view", "name on the tile": "#remotes .tile .name",
                      "videos": "#videos"}.items():
        boxes[name] = await box(w, sel)
    # At 360 px the control bar has the quality in words on a line of its own, then two rows
    # of two buttons: Mute and the camera, Chat and Hang up.
    await in_order(w, ["#btn-mute", "#btn-camera"], lang)
    await in_order(w, ["#btn-chat", "#btn-hangup"], lang)
    # On a phone each control's icon sits above its word (the word gets the button's width).
    for b in ("#btn-mute", "#btn-camera", "#btn-chat", "#btn-hangup"):
        await icon_above_word(w, b)
    # Muted: the microphone is struck through, the word changes, the icon stays.
    await w.page.click("#btn-mute")
    await w.page.wait_for_selector("#btn-mute[aria-pressed=true] svg.icon .slash")
    assert await w.page.is_visible("#btn-mute svg.icon .slash")
    await w.page.click("#btn-mute")

    await w.page.click("#btn-chat")
    await w.page.wait_for_selector("#chat:not([hidden])")
    await fits_width(w)
    await w.page.screenshot(path=shots / f"chat-{lang}.png", full_page=True)
    assert await every_action_has_icon_and_word(w, "#chat") == 1
    boxes["message box"] = await box(w, "#chat-text")
    await in_order(w, ["#chat-text", "#chat-form button[type=submit]"], lang)
    await arrows_point_the_reading_way(w, "#chat-form button svg.icon", lang)

    await w.page.click("#btn-hangup")
    await w.page.wait_for_selector("#confirm[open]")
    assert await every_action_has_icon_and_word(w, "#confirm") == 2
    await w.page.click("#confirm-yes")
    await w.page.wait_for_selector("#stage-ended:not([hidden])")
    await fits_width(w)
    await w.page.screenshot(path=shots / f"ended-{lang}.png", full_page=True)
    assert await every_action_has_icon_and_word(w, "#stage-ended") == 1
    boxes["go back in"] = await box(w, "#rejoin a")
    await icon_before_word(w, "#rejoin a", lang)
    w.assert_clean()
    doc.assert_clean()
    return Seen(width, boxes)


async def test_patient_pages_mirror_in_arabic(live: str, visit: Visit, make_staff: StaffFactory,
                                              config: Any, browser: Any, tmp_path: Path) -> None:
    other_gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, link, _ = await book(config, other_gp.id, soon(), given="Amal")
    it = await walk_patient(browser, live, "it", visit.link, visit.room, visit.gp_email, tmp_path)
    ar = await walk_patient(browser, live, "ar", link, room, other_gp.email, tmp_path)
    for stage in ("precall", "waiting", "call", "chat", "ended"):
        for lang in ("it", "ar"):
            assert (tmp_path / f"{stage}-{lang}.png").stat().st_size > 1000
    assert it.width == ar.width == PHONE["width"]
    width = it.width
    # Fixed-size boxes: the whole box mirrors.
    for name in ("precall dot", "precall card", "precall preview", "self view", "videos",
                 "next step"):
        boxes_mirror(it.boxes[name], ar.boxes[name], width, name)
    # The self view sits in the end corner: bottom right in Italian, bottom left in Arabic.
    assert it.boxes["self view"].x > width / 2 > ar.boxes["self view"].end
    # Boxes as wide as their words: they start on the other side.
    for name in ("check again", "speaker test", "leave", "name on the tile", "go back in",
                 "message box"):
        start_edges_mirror(it.boxes[name], ar.boxes[name], width, name)


async def test_language_choosers_fit_a_phone(live: str, browser: Any) -> None:
    # A first visit: the join page offers the twelve languages first, two big buttons a row.
    w = await open_page(browser)
    await w.page.goto(live + "/join")
    grid = w.page.locator("form.lang-grid button")
    assert await grid.count() == len(PATIENT_LANGUAGES)
    boxes = [await box(w, f"form.lang-grid button:nth-of-type({i + 1})")
             for i in range(len(PATIENT_LANGUAGES))]
    assert len({round(b.x) for b in boxes}) == 2
    assert min(b.height for b in boxes) >= 44
    await fits_width(w)
    await w.page.click("form.lang-grid button[value=ar]")
    await w.page.wait_for_selector("html[dir=rtl][lang=ar]")
    assert await every_action_has_icon_and_word(w, "form.join-form") == 1
    await fits_width(w)

    # The header's disclosure: a globe, then the list, inside the screen, big enough to hit.
    summary = await box(w, "details.lang-switch > summary")
    assert summary.height >= 44
    assert await w.page.locator("details.lang-switch > summary svg[aria-hidden=true]").count() == 1
    await w.page.click("details.lang-switch > summary")
    await w.page.wait_for_selector("details.lang-switch[open] form.lang-list")
    listed = await box(w, "form.lang-list")
    assert listed.x >= 0 and listed.end <= PHONE["width"]
    buttons = w.page.locator("form.lang-list button")
    assert await buttons.count() == len(PATIENT_LANGUAGES)
    for i in range(await buttons.count()):
        b = await buttons.nth(i).bounding_box()
        assert b is not None and b["height"] >= 44 and b["width"] >= 44
        assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"]
    await fits_width(w)
    await w.page.click("form.lang-list button[value=it]")
    await w.page.wait_for_selector("html[dir=ltr][lang=it]")

    # "Read aloud" (its macro's markup, shown): a speaker and a word on one 44 px line.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             extensions=["jinja2.ext.i18n"])
    env.install_null_translations()  # type: ignore[attr-defined]
    macro = env.from_string('{% from "_read_aloud.html" import read_aloud %}'
                            '{{ read_aloud("join-title") }}').render()
    await w.page.eval_on_selector("main", "(m, html) => m.insertAdjacentHTML('beforeend', html)",
                                  macro)
    await w.page.eval_on_selector("button.read-aloud", "b => { b.hidden = false; }")
    read = await box(w, "button.read-aloud")
    icon = await box(w, "button.read-aloud > svg.icon")
    word = await box(w, "button.read-aloud > span")
    assert read.height >= 44
    assert icon.end <= word.x and abs((icon.y + icon.height / 2) - (word.y + word.height / 2)) < 6
    await w.page.eval_on_selector("button.read-aloud", "b => { b.hidden = true; }")
    assert not await w.page.is_visible("button.read-aloud")
    w.assert_clean()


# A line in each language (its name in its own words, then a few of its letters that are not
# in the others), drawn with the font stack the page gives an element of that language.
SAMPLES = {
    "it": "Visita medica: più già",
    "en": "Video consultation",
    "ar": "الاستشارة الطبية بالفيديو ٠١٢٣",
    "zh": "视频问诊，请稍候。",
    "es": "Consulta médica ñ ¿¡",
    "tl": "Konsultasyon sa video",
    "ro": "Consultație ă â î ș ț",
    "uk": "Відеоконсультація ї є ґ",
    "bn": "ভিডিও পরামর্শ ক্ষ ০১২৩",
    "sq": "Konsultë me video ë ç",
    "fr": "Téléconsultation é è ç œ",
    "ru": "Видеоконсультация ы ё",
}

GLYPHS = """async ([lang, text]) => {
  // Where a font has no glyph the browser draws its "missing" box (tofu), the same for every
  // missing letter; a private-use code point is missing from every font, so its drawing is
  // that box. A letter that draws the same as it, or draws nothing, has no real glyph.
  const probe = document.createElement('span');
  probe.lang = lang;
  document.body.append(probe);
  const family = getComputedStyle(probe).fontFamily;
  probe.remove();
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.font = `40px ${family}`;
  ctx.textBaseline = 'middle';
  const draw = (ch) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.fillText(ch, 8, 32);
    return ctx.getImageData(0, 0, 64, 64).data.join(',');
  };
  const tofu = draw('\\uE000');
  ctx.clearRect(0, 0, 64, 64);
  const blank = ctx.getImageData(0, 0, 64, 64).data.join(',');
  const missing = [];
  for (const ch of [...text]) {
    if (/\\s/.test(ch)) continue;
    const drawn = draw(ch);
    if (drawn === tofu || drawn === blank) missing.push(ch);
  }
  return { family, missing, tofuIsBlank: tofu === blank, pua: draw('\\uE001') === tofu };
}"""


async def test_every_language_draws_real_glyphs(live: str, browser: Any) -> None:
    assert set(SAMPLES) == set(PATIENT_LANGUAGES)
    w = await open_page(browser)
    await w.page.goto(live + "/join?lang=ar")
    families = set()
    for lang, sample in SAMPLES.items():
        result = await w.page.evaluate(GLYPHS, [lang, PATIENT_LANGUAGES[lang] + " " + sample])
        # The probe itself must be able to fail: another private-use letter is a box too.
        assert result["pua"], result
        assert not result["missing"], \
            f"{lang}: no glyph for {result['missing']} in {result['family']}"
        families.add(result["family"])
    # Arabic, Bengali and Chinese each get their own list (their system faces, then Noto).
    assert len(families) == 4, families
    w.assert_clean()
