"""Rescheduling keeps to the clinician's hours (weekly hours, extra hours, leave) unless a
coordinator gives a reason, which is recorded; the patient's old link then says the
appointment moved, and to when, and opens nothing."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from server.bookings import availability
from server.consultations import credentials
from server.staff import Role
from server.timeutil import ROME, local_day_text, local_time_text
from tests.bookings.conftest import Api
from tests.conftest import csrf_token, login, post_refused

LINK = re.compile(r"/join/([A-Za-z0-9_-]{20,})")
REASON = "The GP agreed to stay after closing for this patient."


def monday(weeks_ahead: int = 1) -> date:
    today = date.today()
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=ROME)


async def gp_hours(api: Api, clinician: int | None = None) -> None:
    """Monday to Friday, 09:00-13:00 and 14:00-18:00 at San Siro."""
    for weekday in range(5):
        for starts, ends in ((time(9), time(13)), (time(14), time(18))):
            await availability.add_weekly(api.world.conn, clinician or api.world.gp,
                                          "san-siro", weekday, starts, ends)


async def booked(api: Api, starts_at: datetime, **over: Any) -> dict[str, Any]:
    resp = await api.post("/api/v1/bookings", api.booking_body(starts_at, **over))
    assert resp.status == 201, await resp.text()
    b: dict[str, Any] = await resp.json()
    return b


async def move(api: Api, booking_id: int, starts_at: datetime,
               headers: dict[str, str] | None = None, **extra: Any) -> Any:
    return await api.post(f"/api/v1/bookings/{booking_id}/reschedule",
                          {"starts_at": starts_at.isoformat(), **extra}, headers)


async def start_of(api: Api, booking_id: int) -> datetime:
    value: datetime = await api.world.conn.fetchval(
        "SELECT lower(during) FROM bookings WHERE id = $1", booking_id)
    return value


async def test_the_api_refuses_a_move_outside_the_weekly_hours(api: Api):
    await gp_hours(api)
    day = monday()
    b = await booked(api, at(day, 10))
    saturday = day + timedelta(days=5)
    for when in (at(day, 23), at(day, 13, 30), at(day, 12, 45), at(saturday, 10)):
        resp = await move(api, b["id"], when)
        assert resp.status == 409, when
        err = (await resp.json())["error"]
        assert err["code"] == "outside_hours"
        assert err["details"] == {"reason": "outside_hours", "override": "hours_reason"}
        assert "non lavora in questo orario" in err["message"]  # the API speaks Italian
    assert await start_of(api, b["id"]) == at(day, 10)
    # Within the hours (to the minute: 12:30-12:45 of a 15-minute visit ends at 13:00).
    assert (await move(api, b["id"], at(day, 12, 45) - timedelta(minutes=15))).status == 200
    assert (await move(api, b["id"], at(day + timedelta(days=1), 16))).status == 200
    assert await start_of(api, b["id"]) == at(day + timedelta(days=1), 16)


async def test_leave_and_extra_hours_count_as_for_the_free_slots(api: Api):
    await gp_hours(api)
    day = monday()
    b = await booked(api, at(day, 10))
    tuesday, saturday = day + timedelta(days=1), day + timedelta(days=5)
    # Leave everywhere (centre NULL), on Tuesday morning.
    await availability.add_exception(api.world.conn, api.world.gp, None, "leave",
                                     at(tuesday, 9), at(tuesday, 13))
    resp = await move(api, b["id"], at(tuesday, 10))
    assert resp.status == 409
    err = (await resp.json())["error"]
    assert err["code"] == "clinician_on_leave" and err["details"]["reason"] == "leave"
    assert "assente" in err["message"]
    assert (await move(api, b["id"], at(tuesday, 15))).status == 200
    # Extra hours at San Siro on Saturday morning; at Gratosoglio they would not count here.
    assert (await move(api, b["id"], at(saturday, 10))).status == 409
    await availability.add_exception(api.world.conn, api.world.gp, "gratosoglio", "extra",
                                     at(saturday, 9), at(saturday, 12))
    assert (await move(api, b["id"], at(saturday, 10))).status == 409
    await availability.add_exception(api.world.conn, api.world.gp, "san-siro", "extra",
                                     at(saturday, 9), at(saturday, 12))
    assert (await move(api, b["id"], at(saturday, 10))).status == 200


async def test_a_coordinator_overrides_with_a_reason_that_is_recorded(api: Api):
    await gp_hours(api)
    day = monday()
    b = await booked(api, at(day, 10))
    late = at(day, 19)
    # A clinician may move her own booking within her hours, but give no override.
    assert (await move(api, b["id"], at(day, 11), api.gp)).status == 200
    assert (await move(api, b["id"], late, api.gp, hours_reason=REASON)).status == 403
    short = await move(api, b["id"], late, hours_reason="late")
    assert short.status == 422
    assert "hours_reason" in (await short.json())["error"]["details"]["fields"]
    assert await start_of(api, b["id"]) == at(day, 11)
    resp = await move(api, b["id"], late, hours_reason=f"  {REASON} ")
    assert resp.status == 200, await resp.text()
    assert await start_of(api, b["id"]) == late
    rows = await api.world.conn.fetch(
        "SELECT staff_id, starts_at, refusal, reason FROM booking_hours_overrides "
        "WHERE booking_id = $1", b["id"])
    assert [dict(r) for r in rows] == [{"staff_id": api.world.coordinator, "starts_at": late,
                                        "refusal": "outside_hours", "reason": REASON}]
    # A reason given for a time within the hours is not an override: nothing is recorded.
    assert (await move(api, b["id"], at(day, 10), hours_reason=REASON)).status == 200
    assert await api.world.conn.fetchval(
        "SELECT count(*) FROM booking_hours_overrides WHERE booking_id = $1", b["id"]) == 1


async def test_the_staff_page_refuses_outside_hours_and_takes_a_reason(api: Api, make_staff):
    await gp_hours(api)
    day = monday()
    b = await booked(api, at(day, 10))
    who = await make_staff(Role.COORDINATOR, ("san-siro", "gratosoglio"))
    assert (await login(api.client, who.email)).status == 303
    page = f"/bookings/{b['id']}"
    form = await (await api.client.get(page)).text()
    assert 'name="hours_reason"' in form
    token = await csrf_token(api.client, page)
    refused = await post_refused(api.client, page, {
        "csrf_token": token, "action": "reschedule", "starts_at": f"{day.isoformat()}T23:00"})
    assert refused.status == 409
    assert "Il professionista non lavora in questo orario" in refused.html
    assert await start_of(api, b["id"]) == at(day, 10)
    too_short = await post_refused(api.client, page, {
        "csrf_token": token, "action": "reschedule", "starts_at": f"{day.isoformat()}T23:00",
        "hours_reason": "tardi"})
    assert too_short.status == 422 and "almeno 10 caratteri" in too_short.html
    resp = await api.client.post(page, data={
        "csrf_token": token, "action": "reschedule", "starts_at": f"{day.isoformat()}T19:00",
        "hours_reason": REASON}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == page
    assert await start_of(api, b["id"]) == at(day, 19)
    assert await api.world.conn.fetchval(
        "SELECT staff_id FROM booking_hours_overrides WHERE booking_id = $1",
        b["id"]) == who.id


async def test_a_clinicians_page_has_no_override(api: Api, make_staff):
    gp = await make_staff(Role.GP, ("san-siro",))
    await gp_hours(api, gp.id)
    day = monday()
    b = await booked(api, at(day, 10), clinician_id=gp.id)
    assert (await login(api.client, gp.email)).status == 303
    page = f"/bookings/{b['id']}"
    assert 'name="hours_reason"' not in await (await api.client.get(page)).text()
    token = await csrf_token(api.client, page)
    refused = await post_refused(api.client, page, {
        "csrf_token": token, "action": "reschedule", "starts_at": f"{day.isoformat()}T23:00",
        "hours_reason": REASON})
    assert refused.status == 403
    assert await start_of(api, b["id"]) == at(day, 10)


async def sms_link(api: Api, booking_id: int) -> str:
    body = await api.world.conn.fetchval(
        "SELECT body FROM outbox WHERE booking_id = $1 AND channel = 'sms' ORDER BY id DESC "
        "LIMIT 1", booking_id)
    found = LINK.search(body)
    assert found, body
    return found.group(1)


async def test_the_old_link_says_the_appointment_moved_and_when(api: Api):
    await gp_hours(api)
    day = monday()
    b = await booked(api, at(day, 10))
    old = await sms_link(api, b["id"])
    new_start = at(day + timedelta(days=2), 15, 30)
    assert (await move(api, b["id"], new_start)).status == 200
    new = await sms_link(api, b["id"])
    assert new != old
    for lang, heading in (("it", "Il suo appuntamento è stato spostato"),
                          ("en", "Your appointment has moved"),
                          ("fr", "Votre rendez-vous a été déplacé"),
                          ("ar", "تم تغيير موعدك")):
        resp = await api.client.get(f"/join/{old}?lang={lang}", allow_redirects=False)
        assert resp.status == 410, lang
        html = await resp.text()
        assert heading in html, lang
        assert local_day_text(new_start, lang) in html, lang
        assert local_time_text(new_start, lang) in html, lang
        assert "casa_patient" not in resp.cookies and "casa_join" not in {
            k for k, v in resp.cookies.items() if v.value}
        assert old not in html
    # It opens nothing: not the page, not the credential check signalling uses.
    assert (await credentials.open_link(api.world.conn, old, datetime.now(ROME))
            ).outcome == "unknown"
    assert (await api.client.get(f"/join/{new}", allow_redirects=False)).status == 200
    # Cancelled after the move: the old link says cancelled, not moved.
    assert (await api.post(f"/api/v1/bookings/{b['id']}/cancel", {})).status == 200
    gone = await api.client.get(f"/join/{old}?lang=en", allow_redirects=False)
    assert gone.status == 410 and "has been cancelled" in await gone.text()


async def test_the_moved_page_of_a_sensitive_service_names_neither_service_nor_clinician(
        api: Api):
    await gp_hours(api, api.world.psychologist)
    day = monday()
    b = await booked(api, at(day, 10), service_code="psych_session",
                     clinician_id=api.world.psychologist)
    old = await sms_link(api, b["id"])
    new_start = at(day, 15)
    assert (await move(api, b["id"], new_start)).status == 200
    for lang in ("it", "en", "es"):
        html = await (await api.client.get(f"/join/{old}?lang={lang}")).text()
        assert local_time_text(new_start, lang) in html
        for word in ("Psycholog", "psicolog", "Psicolog", "W psychologist"):
            assert word not in html, (lang, word)


async def test_a_link_retired_otherwise_still_does_not_work(api: Api):
    """Only a move is told as a move: a link revoked with its window unchanged (a new link
    sent for the same time) is simply not valid."""
    day = monday()
    b = await booked(api, at(day, 10))
    old = await sms_link(api, b["id"])
    await credentials.revoke(api.world.conn, b["consultation"]["id"], ("link",))
    resp = await api.client.get(f"/join/{old}?lang=en", allow_redirects=False)
    assert resp.status == 404 and "This link does not work" in await resp.text()


async def test_moving_an_in_person_booking_tells_the_patient(api: Api):
    await gp_hours(api)
    day = monday()
    b = await booked(api, at(day, 10), mode="in_person")
    before = await api.world.conn.fetchval(
        "SELECT count(*) FROM outbox WHERE booking_id = $1", b["id"])
    new_start = at(day, 16)
    assert (await move(api, b["id"], new_start)).status == 200
    rows = await api.world.conn.fetch(
        "SELECT channel, body FROM outbox WHERE booking_id = $1 ORDER BY id", b["id"])
    assert len(rows) == before + 2
    assert {r["channel"] for r in rows[before:]} == {"sms", "email"}
    assert all(local_time_text(new_start, "it") in r["body"] for r in rows[before:])
