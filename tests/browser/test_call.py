"""A whole consultation in two browsers: the patient's pre-call check against the echo peer,
the waiting room seen live on the clinician's dashboard, admission, video decoded on both
sides, a reload mid-call, the fall-back to sound only on a throttled network, and the end."""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import Visit, Watched, fits_width, open_page, sign_in

# The quality monitor samples getStats() every 2 s; allow a few samples.
MEDIA_MS = 20_000
LAPTOP = {"width": 1280, "height": 800}


async def patient_in_waiting_room(browser: Any, live: str, visit: Visit) -> Watched:
    """The patient opens the invitation link and goes on without waiting for the connection
    check (patients may: nothing in the check blocks them)."""
    w = await open_page(browser)
    await w.page.goto(f"{live}/join/{visit.link}")
    await w.page.wait_for_url(f"**/consultation/{visit.room}")
    await w.page.click("#precall-continue")
    await w.page.wait_for_selector("#stage-waiting:not([hidden])")
    return w


async def frames_decoded(w: Watched) -> int:
    value = await w.page.get_attribute("#quality", "data-frames-decoded")
    return int(value or 0)


async def video_flows(w: Watched) -> None:
    """framesDecoded (from getStats, via the quality indicator) is positive and growing."""
    await w.page.wait_for_function(
        "() => Number(document.getElementById('quality').dataset.framesDecoded || 0) > 0",
        timeout=MEDIA_MS)
    before = await frames_decoded(w)
    await w.page.wait_for_function(
        f"() => Number(document.getElementById('quality').dataset.framesDecoded || 0) > {before}",
        timeout=MEDIA_MS)


async def clinician_admits_from_dashboard(browser: Any, live: str, visit: Visit,
                                          patient: Watched | None) -> Watched:
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, visit.gp_email)
    await doc.page.goto(live + "/dashboard")
    await doc.page.wait_for_selector("#live:not(:empty)")
    row = f".consultation[data-room='{visit.room}']"
    if patient is None:
        await doc.page.wait_for_selector(f"{row}[data-state=waiting]")
    else:
        await patient.page.click("#precall-continue")
        await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
        started = time.monotonic()
        await doc.page.wait_for_selector(f"{row}[data-state=waiting]", timeout=1000)
        assert time.monotonic() - started < 1.0
    assert "(1" in await doc.page.title()
    await doc.page.click(f"{row} .admit")
    await doc.page.wait_for_selector("#stage-precall:not([hidden])")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    return doc


async def test_patient_is_admitted_sees_video_survives_a_reload_and_sees_the_end(
        live: str, visit: Visit, browser: Any) -> None:
    patient = await open_page(browser)
    await patient.page.goto(f"{live}/join/{visit.link}")
    # The connection check went to the server's echo peer and came back.
    await patient.page.wait_for_selector("#net-result[data-state=ok]", timeout=MEDIA_MS)
    assert int(await patient.page.get_attribute("#net-result", "data-frames-decoded") or 0) > 0
    doc = await clinician_admits_from_dashboard(browser, live, visit, patient)
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await video_flows(patient)
    await video_flows(doc)
    await fits_width(patient)
    # A reload mid-call: straight back into the call, with no pre-call check, no waiting
    # room, and nobody admitting again.
    await patient.page.reload()
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    assert await patient.page.is_hidden("#stage-waiting")
    await video_flows(patient)
    await video_flows(doc)
    assert await doc.page.locator("#waiting-list li.waiting").count() == 0
    # By keyboard: hang up asks first, with the focus on "No"; Escape keeps the call.
    await patient.page.focus("#btn-hangup")
    await patient.page.keyboard.press("Enter")
    assert await patient.page.evaluate("() => document.activeElement.id") == "confirm-no"
    await patient.page.keyboard.press("Escape")
    assert await patient.page.is_visible("#stage-call")
    # The clinician ends the consultation (with a confirmation); the patient sees the end page.
    await doc.page.click("#btn-hangup")
    await doc.page.click("#confirm-yes")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    await doc.page.wait_for_selector("#stage-ended:not([hidden])")
    await fits_width(patient)
    # Coming back later shows the end page again, not an error.
    await patient.page.reload()
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    patient.assert_clean()
    doc.assert_clean()


async def test_throttled_patient_falls_back_to_sound_only(live: str, visit: Visit,
                                                          browser: Any) -> None:
    patient = await patient_in_waiting_room(browser, live, visit)
    # Chromium throttles WebRTC sockets opened after the rule is set (an empty URL pattern
    # matches peer-to-peer traffic): throttle in the waiting room, before the call connects.
    cdp = await patient.page.context.new_cdp_session(patient.page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditionsByRule", {
        "offline": False, "matchedNetworkConditions": [{
            "urlPattern": "", "latency": 400, "downloadThroughput": 16_000,
            "uploadThroughput": 16_000, "connectionType": "cellular2g", "packetLoss": 15}]})
    doc = await clinician_admits_from_dashboard(browser, live, visit, None)
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.wait_for_selector("#retry-video:not([hidden])", timeout=30_000)
    assert await patient.page.get_attribute("#call-app", "data-audio-only") == "true"
    assert await patient.page.get_attribute("#quality", "data-level") == "poor"
    # The patient may try video again whenever they like.
    await cdp.send("Network.emulateNetworkConditionsByRule", {
        "offline": False, "matchedNetworkConditions": []})
    await patient.page.click("#retry-video")
    await patient.page.wait_for_selector("#call-app[data-audio-only=false]")
    assert await patient.page.is_hidden("#retry-video")
    await fits_width(patient)
    patient.assert_clean()
    doc.assert_clean()
