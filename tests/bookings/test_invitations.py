"""Invitations and calendars: discreet for sensitive services, in the patient's language,
sent through the outbox, retried and never lost."""

from __future__ import annotations

import re
from typing import Any

import icalendar
import pytest

from server.bookings import outbox
from server.bookings.outbox import Message
from server.consultations.languages import PATIENT_LANGUAGES
from server.keys import POOL
from server.timeutil import local_when_text
from tests.bookings.conftest import Api, add_patient, future, open_hours
from web import catalogue

SENSITIVE = ("psych_session", "psychiatric_followup", "violence_support")
GIVEAWAYS = re.compile(r"psycho|psichi|psychiat|violen|ascolto|listening|session|colloquio|"
                       r"follow-up|controllo|Test psychologist|Test gp|W psychologist|W gp",
                       re.IGNORECASE)


async def messages(api: Api, booking_id: int) -> list[Any]:
    return list(await api.world.conn.fetch(
        "SELECT channel, recipient, subject, body, ics FROM outbox WHERE booking_id = $1"
        " ORDER BY id", booking_id))


@pytest.mark.parametrize("service", SENSITIVE)
async def test_sensitive_invitations_name_neither_service_nor_clinician(api: Api, service: str):
    english = await add_patient(api.world.conn, "Grace", language="en")
    for lang, patient in (("it", api.world.patient), ("en", english)):
        clinician = api.world.psychologist if service != "psychiatric_followup" else api.world.gp
        resp = await api.post("/api/v1/bookings", api.booking_body(
            future(hh=9 if lang == "it" else 12), service_code=service, clinician_id=clinician,
            patient_id=patient))
        assert resp.status == 201, await resp.text()
        b = await resp.json()
        found = await messages(api, b["id"])
        assert {m["channel"] for m in found} == {"sms", "email"}
        for m in found:
            text = " ".join(filter(None, (m["subject"], m["body"], m["ics"])))
            assert not GIVEAWAYS.search(text), (lang, text)
            assert "Casa San Siro" in text
        email = next(m for m in found if m["channel"] == "email")
        expected = ("Appuntamento presso Casa San Siro" if lang == "it"
                    else "Appointment at Casa San Siro")
        assert email["subject"] == expected
        event = icalendar.Calendar.from_ical(email["ics"]).walk("VEVENT")[0]
        assert str(event["SUMMARY"]) == expected


async def test_ordinary_invitation_names_service_and_clinician(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    sms = next(m for m in await messages(api, b["id"]) if m["channel"] == "sms")
    assert "Visita del medico di base" in sms["body"] and "W gp" in sms["body"]
    assert "/join/" in sms["body"] and re.search(r"\b\d{6}\b", sms["body"])


async def test_a_language_without_texts_gets_english(api: Api):
    portuguese = await add_patient(api.world.conn, "Joana", language="pt")
    b = await (await api.post("/api/v1/bookings",
                              api.booking_body(future(), patient_id=portuguese))).json()
    sms = next(m for m in await messages(api, b["id"]) if m["channel"] == "sms")
    assert "GP visit at Casa San Siro" in sms["body"]
    assert "?lang=en" in sms["body"]


def _english_fragments(lang: str) -> list[str]:
    """The invitation's English words, cut at their placeholders into runs of two words or
    more: none of them may be left in another language's invitation (unless its translator
    kept the words on purpose, as Filipino keeps "Video call")."""
    kept: set[str] = set()
    if lang != "it":
        kept = {str(m.id) for m in catalogue.read_catalog(catalogue.po_path(lang), lang)
                if m.id and m.string == m.id}
    fragments = []
    for m in catalogue.extract_patient_messages():
        if not m.id or not any(path.endswith("invitations.py") for path, _ in m.locations):
            continue
        if str(m.id) in kept:
            continue
        for piece in re.split(r"%\(\w+\)s", str(m.id)):
            words = piece.strip(" .,:;")
            if len(words.split()) >= 2:
                fragments.append(words)
    return fragments


@pytest.mark.parametrize("lang", [code for code in PATIENT_LANGUAGES if code != "en"])
async def test_invitations_and_calendar_in_the_patients_language(api: Api, lang: str):
    fragments = _english_fragments(lang)
    assert len(fragments) > 10
    patient = await add_patient(api.world.conn, "Amal", language=lang)
    home = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=9), patient_id=patient))).json()
    kiosk = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=11), patient_id=patient, mode="kiosk_video", kiosk_id=api.world.kiosk))).json()
    psych = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=15), patient_id=patient, service_code="psych_session",
        clinician_id=api.world.psychologist))).json()
    assert (await api.post(f"/api/v1/bookings/{psych['id']}/cancel", {})).status == 200
    for b, hh in ((home, 9), (kiosk, 11), (psych, 15)):
        found = await messages(api, b["id"])
        assert found, (lang, b["id"])
        for m in found:
            parts = [m["subject"] or "", m["body"]]
            if m["ics"]:
                event = icalendar.Calendar.from_ical(m["ics"]).walk("VEVENT")[0]
                parts += [str(event.get(k, "")) for k in ("SUMMARY", "LOCATION", "DESCRIPTION")]
            text = " ".join(parts)
            left = [f for f in fragments if f in text]
            assert not left, (lang, m["channel"], left, text)
            assert not GIVEAWAYS.search(text) or b is not psych, text
        # The day and time as the language writes them, and the link opens the pages in it.
        assert any(local_when_text(future(hh=hh), lang) in m["body"] for m in found), \
            (lang, [m["body"] for m in found])
    sms = next(m for m in await messages(api, home["id"]) if m["channel"] == "sms")
    assert f"?lang={lang}" in sms["body"]


async def test_kiosk_and_in_person_texts(api: Api):
    k = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), mode="kiosk_video", kiosk_id=api.world.kiosk))).json()
    sms = next(m for m in await messages(api, k["id"]) if m["channel"] == "sms")
    assert "Piazzale Selinunte" in sms["body"] and "/join/" not in sms["body"]
    assert re.search(r"\b\d{6}\b", sms["body"]), "the kiosk needs the code"
    p = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=15), mode="in_person"))).json()
    assert await messages(api, p["id"]) == []


async def test_patient_without_contacts_gets_nothing_queued(api: Api):
    silent = await add_patient(api.world.conn, "Nessuno", email=None)
    await api.world.conn.execute("UPDATE patients SET phone = NULL WHERE id = $1", silent)
    b = await (await api.post("/api/v1/bookings",
                              api.booking_body(future(), patient_id=silent))).json()
    assert await messages(api, b["id"]) == []


async def test_cancellation_tells_the_patient_discreetly(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), service_code="violence_support", clinician_id=api.world.psychologist))).json()
    assert (await api.post(f"/api/v1/bookings/{b['id']}/cancel", {})).status == 200
    last = (await messages(api, b["id"]))[-1]
    assert "annullato" in last["body"] and not GIVEAWAYS.search(last["body"])
    assert "METHOD:CANCEL" in last["ics"]


class Flaky:
    """A sender that fails the first ``fail`` times, like a mail server that is down."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionRefusedError("down")
        self.sent.append(message)


async def test_failed_send_is_retried_never_lost_and_then_blanked(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    pool = api.client.app[POOL]
    flaky = Flaky(fail=2)
    senders: dict[str, Any] = {"sms": flaky, "email": flaky}
    assert await outbox.send_due(pool, senders) == (0, 2)
    rows = await api.world.conn.fetch("SELECT attempts, sent_at, last_error, body FROM outbox")
    assert all(r["attempts"] == 1 and r["sent_at"] is None and r["body"] for r in rows)
    assert {r["last_error"] for r in rows} == {"unreachable"}
    assert await outbox.send_due(pool, senders) == (0, 0)  # backing off, not due yet
    await api.world.conn.execute("UPDATE outbox SET next_attempt_at = now()")
    assert await outbox.send_due(pool, senders) == (2, 0)
    assert len(flaky.sent) == 2 and "/join/" in flaky.sent[0].body + flaky.sent[1].body
    rows = await api.world.conn.fetch("SELECT sent_at, body, ics FROM outbox")
    # Sent messages no longer hold the link and code.
    assert all(r["sent_at"] and r["body"] == "" and r["ics"] is None for r in rows)
    assert b["id"]


async def test_smtp_failure_is_recorded_for_retry(api: Api):
    assert (await api.post("/api/v1/bookings", api.booking_body(future()))).status == 201
    pool = api.client.app[POOL]
    smtp = outbox.SmtpSender("smtp://user:pw@127.0.0.1:9?from=casa@example.org")
    assert await outbox.send_due(pool, {"email": smtp}) == (0, 1)
    row = await api.world.conn.fetchrow("SELECT attempts, last_error FROM outbox "
                                        "WHERE channel = 'email'")
    assert row["attempts"] == 1 and row["last_error"]
    with pytest.raises(ValueError):
        outbox.SmtpSender("http://example.org")


async def test_calendar_feed_is_secret_and_discreet(api: Api):
    from server.bookings import calendar_feed

    assert (await api.post("/api/v1/bookings", api.booking_body(
        future(), service_code="psych_session", clinician_id=api.world.psychologist))
            ).status == 201
    token = await calendar_feed.new_feed(api.world.conn, api.world.psychologist)
    resp = await api.client.get(f"/calendar/{token}.ics")
    assert resp.status == 200 and resp.content_type == "text/calendar"
    text = await resp.text()
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert "Casa San Siro" in str(event["SUMMARY"])
    assert not GIVEAWAYS.search(text) and "Rossi" not in text
    assert (await api.client.get("/calendar/nope.ics")).status == 404
    newer = await calendar_feed.new_feed(api.world.conn, api.world.psychologist)
    assert (await api.client.get(f"/calendar/{token}.ics")).status == 404
    assert (await api.client.get(f"/calendar/{newer}.ics")).status == 200


async def test_background_sender_delivers_right_after_booking(aiohttp_client: Any, config: Any,
                                                              world: Any):
    import asyncio

    from server.app import create_app
    from server.bookings import tokens
    from server.bookings.keys import SENDERS

    app = create_app(config)
    sink = Flaky(fail=0)
    app[SENDERS] = {"sms": sink, "email": sink}
    client = await aiohttp_client(app)
    _, token = await tokens.create(world.conn, world.coordinator)
    resp = await client.post("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"},
                             json={"centre_id": "san-siro", "service_code": "gp_visit",
                                   "mode": "home_video", "patient_id": world.patient,
                                   "clinician_id": world.gp,
                                   "starts_at": future().isoformat()})
    assert resp.status == 201
    for _ in range(100):  # woken by the booking, not by the 30 s poll
        if len(sink.sent) == 2:
            break
        await asyncio.sleep(0.05)
    assert {m.channel for m in sink.sent} == {"sms", "email"}


async def outbox_rows(api: Api, booking_id: int) -> list[Any]:
    return list(await api.world.conn.fetch(
        "SELECT id, channel, body, ics, sent_at, last_error FROM outbox WHERE booking_id = $1"
        " ORDER BY id", booking_id))


def expired(row: Any) -> bool:
    return (row["body"] == "" and row["ics"] is None and row["sent_at"] is None
            and row["last_error"] == outbox.EXPIRED)


async def test_unsent_invitation_expires_when_the_join_window_closes(api: Api):
    """Review 7: without an SMS gateway an SMS is never sent; its link and code must not stay."""
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    pool = api.client.app[POOL]
    assert await outbox.expire(pool) == 0
    rows = await outbox_rows(api, b["id"])
    assert rows and all("/join/" in r["body"] for r in rows)
    await api.world.conn.execute(
        "UPDATE consultations SET join_closes_at = now() - interval '1 second',"
        " join_opens_at = now() - interval '2 hours' WHERE booking_id = $1", b["id"])
    assert await outbox.expire(pool) == 2
    assert all(expired(r) for r in await outbox_rows(api, b["id"]))
    sink = Flaky(fail=0)
    assert await outbox.send_due(pool, {"sms": sink, "email": sink}) == (0, 0)
    assert sink.sent == [] and await outbox.expire(pool) == 0


async def test_reschedule_and_cancellation_blank_the_old_invitations(api: Api):
    await open_hours(api.world.conn, api.world.gp)
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    pool = api.client.app[POOL]
    first = {r["id"] for r in await outbox_rows(api, b["id"])}
    assert (await api.post(f"/api/v1/bookings/{b['id']}/reschedule",
                           {"starts_at": future(hh=11).isoformat()})).status == 200
    await outbox.expire(pool)
    rows = await outbox_rows(api, b["id"])
    assert all(expired(r) for r in rows if r["id"] in first)
    second = [r for r in rows if r["id"] not in first]
    assert len(second) == 2 and all("/join/" in r["body"] for r in second)
    assert (await api.post(f"/api/v1/bookings/{b['id']}/cancel", {})).status == 200
    await outbox.expire(pool)
    rows = await outbox_rows(api, b["id"])
    live = [r for r in rows if not expired(r)]
    # Only the cancellation notices are still to send, and they hold no link or code.
    assert len(live) == 2 and all("/join" not in r["body"] for r in live)
    assert all(not re.search(r"\b\d{6}\b", r["body"]) for r in live)


async def test_cancellation_notice_expires_after_the_appointment(api: Api):
    p = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=15), mode="in_person"))).json()
    assert (await api.post(f"/api/v1/bookings/{p['id']}/cancel", {})).status == 200
    pool = api.client.app[POOL]
    assert await outbox.expire(pool) == 0
    await api.world.conn.execute("ALTER TABLE bookings DISABLE TRIGGER USER")
    await api.world.conn.execute(
        "UPDATE bookings SET during = tstzrange(now() - interval '2 hours', now() - interval"
        " '1 hour'), updated_at = updated_at WHERE id = $1", p["id"])
    await api.world.conn.execute("ALTER TABLE bookings ENABLE TRIGGER USER")
    assert await outbox.expire(pool) == 2


async def test_background_task_expires_even_without_any_sender(aiohttp_client: Any,
                                                               config: Any, world: Any):
    import asyncio

    from server.app import create_app
    from server.bookings import tokens
    from server.bookings.keys import SENDERS

    app = create_app(config)
    app[SENDERS] = {}  # as outside demo without SMTP: nothing can be sent
    client = await aiohttp_client(app)
    _, token = await tokens.create(world.conn, world.coordinator)
    headers = {"Authorization": f"Bearer {token}"}
    resp = await client.post("/api/v1/bookings", headers=headers, json={
        "centre_id": "san-siro", "service_code": "gp_visit", "mode": "home_video",
        "patient_id": world.patient, "clinician_id": world.gp,
        "starts_at": future().isoformat()})
    b = await resp.json()
    assert (await client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=headers,
                              json={})).status == 200
    for _ in range(100):  # woken by the cancellation, not by the 30 s poll
        rows = await world.conn.fetch("SELECT body, last_error FROM outbox WHERE booking_id = $1"
                                      " ORDER BY id", b["id"])
        if rows[0]["last_error"] == outbox.EXPIRED:
            break
        await asyncio.sleep(0.05)
    assert [r["last_error"] for r in rows] == ["expired", "expired", None, None]
    assert all("/join/" not in r["body"] for r in rows)
