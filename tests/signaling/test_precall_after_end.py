"""A consultation that is over grants nothing more: after the clinician ends it, neither the
patient's link, the patient's cookie nor a guest's token gets TURN credentials or an echo
peer (an abusive partner holding the phone afterwards must not relay through our TURN)."""

from __future__ import annotations

import re
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from server.bookings import context as bookings_context
from server.bookings import workflow
from tests.signaling.conftest import Visit


async def _offer_sdp() -> str:
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _attempts(client: Any, auth: dict[str, str], sdp: str) -> list[tuple[int, Any]]:
    """The ICE servers and an echo offer, as the pre-call page asks for them."""
    out = []
    ice = await client.get("/api/v1/precall/ice-servers", headers=auth)
    out.append((ice.status, await ice.json()))
    offer = await client.post("/api/v1/precall/offer", json={"sdp": sdp, "type": "offer"},
                              headers=auth)
    out.append((offer.status, await offer.json()))
    return out


async def _credentials(client: Any, clients: Any, visit: Visit, gp: Any) -> tuple[Any, ...]:
    """The doctor in the room, a guest token from an invite, and the patient's cookie from
    the real join pages."""
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("invite", guest=True, label="Interprete", id="g1")
    link = (await doctor.expect("invited", 5))["link"]
    guest_token = link.split("#guest=")[1]
    page = await client.get(f"/join/{visit.token}")
    # The link answers with the consultation page itself (its address.js cleans the bar).
    assert page.status == 200 and f'data-room="{visit.room_id}"' in await page.text()
    assert client.session.cookie_jar.filter_cookies(client.make_url("/")).get("casa_patient")
    # The page's CSRF token, which its script sends with the offer.
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page.text())
    assert csrf is not None
    return doctor, guest_token, {"X-CSRF-Token": csrf.group(1)}


async def test_nothing_after_the_clinician_ends_the_consultation(client, clients, visits, gp):
    visit = await visits(gp.id)
    doctor, guest_token, cookie = await _credentials(client, clients, visit, gp)
    patient = await clients.patient(visit)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 5)
    sdp = await _offer_sdp()
    link = {"Authorization": f"Bearer {visit.token}"}
    guest = {"Authorization": f"Bearer {guest_token}"}
    for auth in (link, guest, cookie):   # cookie: casa_patient
        got = await _attempts(client, auth, sdp)
        assert [s for s, _ in got] == [200, 200], got
    await doctor.send("end")
    await patient.expect("ended", 5)
    for auth in (link, guest, cookie):
        for status, body in await _attempts(client, auth, sdp):
            assert (status, body["error"]["code"]) == (410, "consultation_ended"), body


async def test_nothing_after_the_booking_is_cancelled(client, clients, visits, gp):
    visit = await visits(gp.id)
    _doctor, guest_token, cookie = await _credentials(client, clients, visit, gp)
    sdp = await _offer_sdp()
    # The clinician cancels through the same workflow as the booking pages and the API.
    await workflow.set_status(bookings_context.of_app(client.server.app), visit.booking_id,
                              "cancelled", by=gp.id)
    for status, body in await _attempts(client, {"Authorization": f"Bearer {guest_token}"},
                                        sdp):
        assert (status, body["error"]["code"]) == (410, "consultation_ended"), body
    # The cancellation revoked the patient's own credentials: not even known any more.
    for auth in ({"Authorization": f"Bearer {visit.token}"}, cookie):
        for status, body in await _attempts(client, auth, sdp):
            assert (status, body["error"]["code"]) == (401, "unauthenticated"), body
