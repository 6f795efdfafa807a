"""What a call's media did reaches the activity report (docs/protocol.md, ``media_report``):
two real Chromium pages in a call through a real coturn, the patient's page allowed relay
candidates only, on a throttled network. Her page says the call went through TURN, then that
it fell back to sound only, and the consultation keeps both as ``media_path`` events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from records import keyring
from server.config import Config
from tests.browser.conftest import Visit, open_page, sign_in
from tests.conftest import SECRET_KEY
from tests.coturn import TURN_SECRET, coturn
from tests.pg import serving_url

LAPTOP = {"width": 1280, "height": 800}
# Every peer connection of the page gathers relay candidates only: its media must go through
# coturn (the page itself takes whatever ICE finds; this is the network that leaves it none).
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  function RelayOnly(config, ...rest) {
    return new Native({ ...(config || {}), iceTransportPolicy: 'relay' }, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})();
"""


@pytest.fixture(scope="module")
def turn_port() -> Iterator[int]:
    with coturn() as port:
        yield port


@pytest.fixture
def config(db_url: str, tmp_path: Path, turn_port: int) -> Config:
    # A keyring: the clinician's call page is refused without the records it shows.
    path = tmp_path / "keyring.json"
    keyring.save(keyring.generate(path), path)
    return Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                  turn_secret=TURN_SECRET,
                  turn_urls=(f"turn:127.0.0.1:{turn_port}?transport=udp",),
                  stun_urls=(f"stun:127.0.0.1:{turn_port}",))


async def media_paths(conn: asyncpg.Connection, visit: Visit, role: str,
                      until: Any, within: float = 40.0) -> list[dict[str, Any]]:
    """The participant's media_path events once ``until`` holds of them (bounded)."""
    deadline = time.monotonic() + within
    while True:
        rows = await conn.fetch("SELECT detail FROM consultation_events WHERE"
                                " consultation_id = $1 AND event = 'media_path' ORDER BY id",
                                visit.consultation_id)
        paths = [d for r in rows if (d := json.loads(r["detail"]))["role"] == role]
        if until(paths) or time.monotonic() > deadline:
            return paths
        await asyncio.sleep(0.2)


async def test_a_relayed_call_that_falls_back_to_sound_only_is_recorded(
        live: str, visit: Visit, browser: Any, conn: asyncpg.Connection) -> None:
    # Both pages load before the network is throttled (a throttled page load outlasts the
    # tests' waits); the clinician waits in the call, the patient in the waiting room.
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, visit.gp_email)
    await doc.page.goto(f"{live}/consultation/{visit.room}")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    patient = await open_page(browser)
    await patient.page.context.add_init_script(RELAY_ONLY)
    await patient.page.goto(f"{live}/join/{visit.link}")
    await patient.page.wait_for_url(f"**/consultation/{visit.room}")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    # Chromium throttles WebRTC sockets opened after the rule is set: before admission.
    cdp = await patient.page.context.new_cdp_session(patient.page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditionsByRule", {
        "offline": False, "matchedNetworkConditions": [{
            "urlPattern": "", "latency": 400, "downloadThroughput": 16_000,
            "uploadThroughput": 16_000, "connectionType": "cellular2g", "packetLoss": 15}]})
    await doc.page.click("#waiting-list li.waiting button.admit")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    first = await media_paths(conn, visit, "patient", lambda ps: len(ps) >= 1)
    assert first[:1] == [{"relay": True, "sound_only": False, "role": "patient"}]
    await patient.page.wait_for_selector("#retry-video:not([hidden])", timeout=30_000)
    paths = await media_paths(conn, visit, "patient", lambda ps: len(ps) >= 2)
    assert paths == [{"relay": True, "sound_only": False, "role": "patient"},
                     {"relay": True, "sound_only": True, "role": "patient"}]
    # The clinician's page, every candidate allowed, sees the relay at the patient's end.
    mine = await media_paths(conn, visit, "clinician", lambda ps: len(ps) >= 1)
    assert mine[:1] == [{"relay": True, "sound_only": False, "role": "clinician"}]
    # Trying video again and falling back no more adds nothing.
    await cdp.send("Network.emulateNetworkConditionsByRule", {
        "offline": False, "matchedNetworkConditions": []})
    await patient.page.click("#retry-video")
    await patient.page.wait_for_selector("#call-app[data-audio-only=false]")
    assert len(await media_paths(conn, visit, "patient", lambda ps: False, within=1.0)) == 2
    patient.assert_clean()
    doc.assert_clean()
