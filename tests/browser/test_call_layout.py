"""The call page as a place to work, measured in Chromium on one real call (fake media) whose
windows are resized rather than set up again for every size.

The clinician at 1280x800 and 1920x1080: the patient's video at least half the window wide,
the note editor beside it, both wholly in the window, no page scroll, typing a note moves
nothing; the side column's tabs work by keyboard; a tablet (800x1024) stacks them. The
patient at 360x740 and 320x568: mute, camera, chat and hang-up inside the screen and at least
48x48 px, the chat's unread count in words. Both: videos with accessible names (as
Chromium's accessibility tree computes them), the connection's quality in words, Mute and the
camera keeping their names while aria-pressed flips, and no way out of the page in the header
during the call. Screenshots of every size are kept under the test's tmp_path (looked at,
never compared pixel by pixel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser import test_accessibility
from tests.browser.axtree import page_strings
from tests.browser.conftest import Visit, Watched, fits_width, open_page
from tests.browser.test_call import MEDIA_MS
from tests.browser.test_waiting_room import clinician_in_call

CLINICIAN_SIZES = ({"width": 1280, "height": 800}, {"width": 1920, "height": 1080})
TABLET = {"width": 800, "height": 1024}
PATIENT_SIZES = ({"width": 360, "height": 740}, {"width": 320, "height": 568})
CONTROLS = ("#btn-mute", "#btn-camera", "#btn-chat", "#btn-hangup")
# WCAG 2.5.5's target size, and the project's own minimum for every control.
TARGET_PX = 48

# The app with a keyring, so the records package fills the call page's notes panel.
live = test_accessibility.live


async def ax_name(w: Watched, selector: str) -> str:
    """The accessible name Chromium computes for the first element ``selector`` matches."""
    cdp = await w.page.context.new_cdp_session(w.page)
    try:
        root = await cdp.send("DOM.getDocument", {"depth": 0})
        found = await cdp.send("DOM.querySelector", {"nodeId": root["root"]["nodeId"],
                                                     "selector": selector})
        assert found["nodeId"], f"{selector}: not in the page"
        backend = (await cdp.send("DOM.describeNode",
                                  {"nodeId": found["nodeId"]}))["node"]["backendNodeId"]
        tree = await cdp.send("Accessibility.getPartialAXTree",
                              {"backendNodeId": backend, "fetchRelatives": True})
    finally:
        await cdp.detach()
    node = next(n for n in tree["nodes"] if n.get("backendDOMNodeId") == backend)
    return str(node.get("name", {}).get("value", ""))


async def rect(w: Watched, selector: str) -> dict[str, float]:
    found = await w.page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not laid out"
    return {k: float(v) for k, v in found.items()}


def inside(box: dict[str, float], size: dict[str, int]) -> bool:
    return (box["x"] >= -0.5 and box["y"] >= -0.5 and box["x"] + box["width"] <= size["width"] + 0.5
            and box["y"] + box["height"] <= size["height"] + 0.5)


async def page_scroll(w: Watched) -> float:
    """How far the page itself could scroll down (0: everything is in the window)."""
    return float(await w.page.evaluate(
        "() => document.documentElement.scrollHeight - document.documentElement.clientHeight"))


async def string(w: Watched, key: str) -> str:
    """One of the page's own translated client strings (in its bundle)."""
    return (await page_strings(w.page))[key]


async def header_has_no_way_out(w: Watched) -> None:
    """During the call, nothing in the page's header can leave or reload it: no visible link,
    form or button there (the language switch and sign-out are back after the call)."""
    exits = await w.page.evaluate(
        """() => [...document.querySelectorAll('body > header :is(a, form, button, summary)')]
             .filter((e) => e.getClientRects().length).map((e) => e.outerHTML.slice(0, 80))""")
    assert not exits, f"ways out of the call in the header: {exits}"


async def stable_toggle(w: Watched, selector: str) -> None:
    """A toggle keeps its name; only aria-pressed says whether it is on."""
    name = await ax_name(w, selector)
    assert name and await w.page.get_attribute(selector, "aria-pressed") == "false"
    for pressed in ("true", "false"):
        await w.page.click(selector)
        await w.page.wait_for_selector(f"{selector}[aria-pressed={pressed}]")
        assert await ax_name(w, selector) == name, f"{selector}: name changed when pressed"


async def quality_in_words(w: Watched) -> None:
    await w.page.wait_for_selector("#quality:not([data-level=unknown])", timeout=MEDIA_MS)
    # Level and words read together: the monitor may change both between two reads.
    level, shown = await w.page.evaluate(
        "() => [document.getElementById('quality').dataset.level,"
        " document.getElementById('quality').innerText.trim()]")
    words = await string(w, f"quality_{level}")
    assert words and shown == words, (level, shown)
    assert await w.page.is_visible("#quality-text")


async def clinician_at(doc: Watched, size: dict[str, int], shots: Path,
                       name: str = "chat-closed") -> None:
    await doc.page.set_viewport_size(size)
    await doc.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")
    shot = shots / f"clinician-{name}-{size['width']}x{size['height']}.png"
    assert len(await doc.page.screenshot(path=shot)) > 1000
    where = f"(screenshot: {shot})"
    video = await rect(doc, "#remotes .tile video")
    assert video["width"] >= size["width"] / 2, f"video {video['width']:.0f} px wide {where}"
    assert inside(video, size), f"video {video} outside the window {where}"
    # The note editor's panel and the first field of the note, beside the video.
    for sel in ("#panel-notes", "#note-reason"):
        box = await rect(doc, sel)
        assert inside(box, size), f"{sel} {box} outside the window {where}"
        assert box["x"] >= video["x"] + video["width"], f"{sel} not beside the video {where}"
    assert await page_scroll(doc) <= 0, f"the page scrolls {where}"
    # The self view sits small over a corner of the patient's video.
    me = await rect(doc, "#self-view")
    assert me["width"] < video["width"] / 3 and inside(me, size), where
    assert video["x"] <= me["x"] and me["x"] + me["width"] <= video["x"] + video["width"] + 1
    # Measurements are fields a finger or a mouse hits at once, not slivers.
    measure = await rect(doc, "#notes-panel [data-measure]")
    assert measure["width"] >= 96 and measure["height"] >= TARGET_PX, f"{measure} {where}"
    # Writing: the page does not move, the patient stays in view.
    await doc.page.click("#note-reason")
    await doc.page.keyboard.type("Tosse da tre giorni")
    assert await doc.page.evaluate("() => window.scrollY") == 0
    assert inside(await rect(doc, "#remotes .tile video"), size), where
    await doc.page.fill("#note-reason", "")


async def patient_at(patient: Watched, size: dict[str, int], shots: Path, name: str) -> None:
    await patient.page.set_viewport_size(size)
    await patient.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")
    shot = shots / f"patient-{name}-{size['width']}x{size['height']}.png"
    assert len(await patient.page.screenshot(path=shot)) > 1000
    for sel in CONTROLS:
        box = await rect(patient, sel)
        assert inside(box, size), f"{sel} {box} outside the screen (screenshot: {shot})"
        assert box["width"] >= TARGET_PX and box["height"] >= TARGET_PX, \
            f"{sel} is {box['width']:.0f}x{box['height']:.0f} (screenshot: {shot})"
    video = await rect(patient, "#remotes .tile video")
    assert video["height"] >= 120 and inside(video, size), f"{video} (screenshot: {shot})"
    await fits_width(patient)


async def test_clinician_works_beside_the_patient_and_the_patient_keeps_every_control(
        live: str, visit: Visit, browser: Any, tmp_path: Path) -> None:
    patient = await open_page(browser)
    await patient.page.goto(f"{live}/join/{visit.link}")
    await patient.page.wait_for_url(f"**/consultation/{visit.room}")
    # The camera's preview in the check is named too (once it shows the camera).
    await patient.page.wait_for_selector("#camera-result[data-state=ok]")
    assert await ax_name(patient, "#preview") == "La sua videocamera"
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    doc = await clinician_in_call(browser, live, visit)
    await doc.page.click("#waiting-list li.waiting button.admit")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    for w in (patient, doc):
        await w.page.wait_for_function(
            "() => (document.querySelector('#remotes .tile video') || {}).videoWidth > 0",
            timeout=MEDIA_MS)
    await doc.page.wait_for_selector("#notes-panel [data-notes-editor] #note-reason",
                                     timeout=MEDIA_MS)

    # Names: each video says whose it is; the self view is "your camera".
    assert visit.patient_name in await ax_name(doc, "#remotes .tile video")
    assert visit.gp_name in await ax_name(patient, "#remotes .tile video")
    assert await ax_name(patient, "#self-view") == "La sua videocamera"
    doc_lang = await doc.page.get_attribute("html", "lang")
    assert await ax_name(doc, "#self-view") == {"it": "La sua videocamera",
                                                "en": "Your camera"}[doc_lang or ""]
    for w in (patient, doc):
        await quality_in_words(w)
        await header_has_no_way_out(w)

    for size in CLINICIAN_SIZES:
        await clinician_at(doc, size, tmp_path)
    # A tablet: stacked, the side column under the video, both in the window, no page scroll.
    await doc.page.set_viewport_size(TABLET)
    shot = tmp_path / "clinician-tablet-800x1024.png"
    assert len(await doc.page.screenshot(path=shot)) > 1000
    video, side = await rect(doc, "#remotes .tile video"), await rect(doc, "aside.side")
    assert side["y"] >= video["y"] + video["height"], f"not stacked (screenshot: {shot})"
    assert inside(video, TABLET) and inside(side, TABLET), f"(screenshot: {shot})"
    assert await page_scroll(doc) <= 0, f"the page scrolls (screenshot: {shot})"
    await doc.page.set_viewport_size(CLINICIAN_SIZES[0])

    # The side column's tabs, by keyboard alone: arrows move between them, the panel follows.
    await doc.page.focus("#tab-notes")
    assert await doc.page.get_attribute("#tab-notes", "aria-selected") == "true"
    await doc.page.keyboard.press("ArrowRight")
    assert await doc.page.evaluate("() => document.activeElement.id") == "tab-invite"
    assert await doc.page.get_attribute("#tab-invite", "aria-selected") == "true"
    assert await doc.page.is_visible("#invite-guest") and await doc.page.is_hidden("#panel-notes")
    await doc.page.keyboard.press("Tab")
    assert await doc.page.evaluate(
        "() => document.getElementById('panel-invite').contains(document.activeElement)")
    await doc.page.focus("#tab-invite")
    await doc.page.keyboard.press("Home")
    assert await doc.page.get_attribute("#tab-notes", "aria-selected") == "true"
    assert await doc.page.is_visible("#panel-notes") and await doc.page.is_hidden("#panel-invite")
    assert await doc.page.get_attribute("#tab-invite", "tabindex") == "-1"

    # Two chat lines while the patient's chat is closed: the button says how many, in words.
    await doc.page.click("#btn-chat")
    for line in ("Buongiorno", "Mi sente?"):
        await doc.page.fill("#chat-text", line)
        await doc.page.press("#chat-text", "Enter")
    await patient.page.wait_for_function(
        "() => document.querySelectorAll('#chat-log li').length === 2")
    count = await patient.page.inner_text("#chat-unread")
    assert "2" in count and any(c.isalpha() for c in count), count
    assert count.strip() in await ax_name(patient, "#btn-chat")
    # With the chat open the clinician's page still does not scroll.
    await clinician_at(doc, CLINICIAN_SIZES[0], tmp_path, "chat-open")

    for size in PATIENT_SIZES:
        await patient_at(patient, size, tmp_path, "chat-closed")
    await patient.page.click("#btn-chat")
    assert await patient.page.is_hidden("#chat-unread")
    await patient_at(patient, PATIENT_SIZES[0], tmp_path, "chat-open")

    for w in (patient, doc):
        await stable_toggle(w, "#btn-mute")
        await stable_toggle(w, "#btn-camera")
    patient.assert_clean()
    doc.assert_clean()
