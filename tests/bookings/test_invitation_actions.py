"""Invitations staff can act on: the state of each channel on the booking page, sending again,
a new code read over the phone (shown once), the printed invitation, and who may do any of it."""

from __future__ import annotations

import html as html_text
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from server.bookings import invitation_actions, outbox
from server.bookings.outbox import Message
from server.bookings.senders import SendError
from server.keys import POOL
from server.staff import Role
from tests.bookings.conftest import Api, add_patient, future
from tests.bookings.test_invitations import GIVEAWAYS
from tests.bookings.test_join import book, join_with_code, open_link, soon
from tests.conftest import csrf_token, login

DIGITS = re.compile(r'class="code-digits"[^>]*><span>(\d{3})</span> <span>(\d{3})</span>')


async def signed_in(api: Api, make_staff: Any, role: Role = Role.COORDINATOR,
                    centres: tuple[str, ...] = ("san-siro", "gratosoglio")) -> Any:
    who = await make_staff(role, centres)
    assert (await login(api.client, who.email)).status == 303
    return who


async def act(api: Api, booking_id: int, action: str, **more: str) -> Any:
    token = await csrf_token(api.client, f"/bookings/{booking_id}")
    return await api.client.post(f"/bookings/{booking_id}/invitation",
                                 data={"csrf_token": token, "action": action, **more},
                                 allow_redirects=False)


async def page(api: Api, booking_id: int) -> str:
    resp = await api.client.get(f"/bookings/{booking_id}")
    assert resp.status == 200
    return html_text.unescape(await resp.text())


def state_of(html: str, channel: str) -> str:
    found = re.search(rf'data-channel="{channel}" data-state="(\w+)">([^<]*)', html)
    assert found, f"no {channel} state on the page"
    return found.group(1) + " " + " ".join(found.group(2).split())


def same_page(text: str, booking_id: int) -> str:
    """A page with what differs between two requests taken out: the CSRF token, the path."""
    text = re.sub(r'(name="csrf[-_]token" (?:content|value)=")[^"]+', r"\1", text)
    return text.replace(f"/bookings/{booking_id}", "/bookings/N")


class Sink:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


class Refusing:
    """A provider that refuses every message for good (an invalid number)."""

    async def send(self, message: Message) -> None:
        raise SendError("rejected", permanent=True, status=400)


class Down:
    async def send(self, message: Message) -> None:
        raise SendError("unavailable", status=503)


async def test_state_shown_for_waiting_queued_sent_retrying_failed_expired(api: Api, make_staff):
    await signed_in(api, make_staff)
    pool = api.client.app[POOL]
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    html = await page(api, b["id"])
    # Casa here has no SMS gateway and no mail server: both wait, and the page says why.
    assert state_of(html, "sms").startswith("waiting In attesa: nessun servizio SMS")
    assert state_of(html, "email").startswith("waiting In attesa: nessun server di posta")
    queued = await invitation_actions.states(pool, b["id"], frozenset({"sms", "email"}))
    assert {s.state for s in queued} == {"queued"}

    t0 = datetime.now(UTC)
    assert await outbox.send_due(pool, {"sms": Sink(), "email": Down()}, t0) == (1, 1)
    html = await page(api, b["id"])
    assert state_of(html, "sms").startswith("sent Inviato il")
    email = state_of(html, "email")
    assert email.startswith("retrying Non ancora inviato. Tentativi non riusciti: 1.")
    assert "Il fornitore non era in funzione. (HTTP 503)" in email and "Prossimo tentativo" in email

    assert await outbox.send_due(pool, {"email": Refusing()}, t0 + timedelta(minutes=2)) == (0, 1)
    email = state_of(await page(api, b["id"]), "email")
    assert email.startswith("failed Non riuscito, non verrà ritentato. Tentativi: 2.")
    assert "probabilmente il numero di telefono è errato" in email

    # Rescheduled: the old invitations are overtaken; the new one waits.
    other = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=11), patient_id=api.world.patient2))).json()
    await api.world.conn.execute("UPDATE bookings SET updated_at = now() WHERE id = $1",
                                 other["id"])
    await outbox.expire(pool)
    html = await page(api, other["id"])
    assert state_of(html, "sms").startswith("expired Scaduto senza invio")


async def test_resend_queues_one_message_retires_the_unsent_one_and_is_audited(
        api: Api, make_staff):
    who = await signed_in(api, make_staff)
    b, token, code = await book(api, soon(5))
    resp = await act(api, b["id"], "sms")
    assert resp.status == 303 and resp.headers["Location"] == f"/bookings/{b['id']}"
    html = await page(api, b["id"])
    assert "L'invito sarà inviato di nuovo per SMS." in html
    rows = await api.world.conn.fetch(
        "SELECT kind, channel, last_error, body FROM outbox WHERE booking_id = $1 ORDER BY id",
        b["id"])
    assert [(r["kind"], r["channel"]) for r in rows] == [
        ("invitation", "sms"), ("invitation", "email"), ("resend", "sms")]
    # The first SMS, never sent, is retired with its dead code; the e-mail is left alone.
    assert rows[0]["last_error"] == "replaced" and rows[0]["body"] == ""
    assert rows[1]["last_error"] is None and rows[1]["body"]
    assert "inviato di nuovo dal personale" in html
    new_code = re.search(r"\b(\d{6})\b", rows[2]["body"])
    assert new_code and new_code.group(1) != code
    audit = await api.world.conn.fetch(
        "SELECT actor_staff_id, booking_id, detail FROM audit_log "
        "WHERE action = 'invitation_resent'")
    assert [(a["actor_staff_id"], a["booking_id"], json.loads(a["detail"])) for a in audit] == [
        (who.id, b["id"], {"channel": "sms"})]
    # The new code opens the consultation; the old one does not; the old link still does.
    assert (await join_with_code(api, code)).status == 422
    joined = await join_with_code(api, new_code.group(1))
    assert joined.status == 303 and joined.headers["Location"].startswith("/consultation/")
    assert (await open_link(api, token)).status == 200


async def test_resend_is_refused_without_a_phone_and_after_a_cancellation(api: Api, make_staff):
    await signed_in(api, make_staff)
    no_phone = await add_patient(api.world.conn, "Senza", email=None)
    await api.world.conn.execute("UPDATE patients SET phone = NULL WHERE id = $1", no_phone)
    b = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), patient_id=no_phone))).json()
    html = await page(api, b["id"])
    assert 'value="sms"' not in html and "né un numero di telefono né" in html
    resp = await act(api, b["id"], "sms")
    assert resp.status == 303
    refused = await api.client.get(resp.headers["Location"])
    assert refused.status == 422
    assert "Il paziente non ha un numero di telefono." in html_text.unescape(await refused.text())
    cancelled = await (await api.post("/api/v1/bookings", api.booking_body(future(hh=12)))).json()
    await api.post(f"/api/v1/bookings/{cancelled['id']}/cancel", {})
    assert 'value="phone"' not in await page(api, cancelled["id"])
    resp = await act(api, cancelled["id"], "phone")
    refused = await api.client.get(resp.headers["Location"])
    assert refused.status == 409
    assert "non si può più accedere" in html_text.unescape(await refused.text())
    assert await api.world.conn.fetchval(
        "SELECT count(*) FROM outbox WHERE kind = 'resend'") == 0
    assert await api.world.conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action LIKE 'invitation%' "
        "OR action = 'join_code_issued'") == 0


async def test_a_new_code_is_shown_once_audited_and_invalidates_the_old(api: Api, make_staff):
    who = await signed_in(api, make_staff)
    b, token, old = await book(api, soon(5))
    resp = await act(api, b["id"], "phone")
    assert resp.status == 303 and resp.headers["Location"] == f"/bookings/{b['id']}/code"
    shown = await api.client.get(resp.headers["Location"])
    assert shown.status == 200 and shown.headers["Cache-Control"] == "no-store"
    html = html_text.unescape(await shown.text())
    found = DIGITS.search(html)
    assert found, html
    new = found.group(1) + found.group(2)
    assert new != old and "data di nascita" in html
    # Reloading (or Back, which asks again: no-store) shows nothing of it.
    again = await api.client.get(f"/bookings/{b['id']}/code")
    text = html_text.unescape(await again.text())
    assert again.headers["Cache-Control"] == "no-store"
    assert new not in text and "già stato mostrato" in text and not DIGITS.search(text)
    # Audited: who, which booking, what for; never the code.
    rows = await api.world.conn.fetch(
        "SELECT actor_staff_id, booking_id, detail::text AS detail FROM audit_log "
        "WHERE action = 'join_code_issued'")
    assert [(r["actor_staff_id"], r["booking_id"]) for r in rows] == [(who.id, b["id"])]
    assert json.loads(rows[0]["detail"]) == {"purpose": "phone"}
    assert not await api.world.conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE detail::text LIKE '%' || $1 || '%'", new)
    # Nothing of it is left in the database, sealed or not.
    assert await api.world.conn.fetchval("SELECT count(*) FROM join_code_reveals") == 0
    # Through the real join form: the old code with the date of birth is refused, the new works.
    assert (await join_with_code(api, old)).status == 422
    joined = await join_with_code(api, new)
    assert joined.status == 303 and joined.headers["Location"].startswith("/consultation/")
    assert (await open_link(api, token)).status == 200  # the link was not touched


async def test_a_code_issued_for_one_staff_member_is_not_shown_to_another(api: Api, make_staff):
    await signed_in(api, make_staff)
    b, _token, _old = await book(api, soon(5))
    assert (await act(api, b["id"], "phone")).status == 303
    await api.client.post("/logout", data={"csrf_token": await csrf_token(api.client, "/")})
    api.client.session.cookie_jar.clear()
    await signed_in(api, make_staff)
    text = html_text.unescape(await (await api.client.get(f"/bookings/{b['id']}/code")).text())
    assert not DIGITS.search(text) and "già stato mostrato" in text


async def test_printed_invitation_in_the_patients_language_once_and_discreet(
        api: Api, make_staff):
    await signed_in(api, make_staff)
    italian, _token, old = await book(api, soon(5))
    assert (await act(api, italian["id"], "print")).headers["Location"] == \
        f"/bookings/{italian['id']}/print"
    resp = await api.client.get(f"/bookings/{italian['id']}/print")
    html = html_text.unescape(await resp.text())
    assert resp.headers["Cache-Control"] == "no-store"
    assert '<html lang="it" dir="ltr">' in html
    assert "Visita del medico di base presso Casa San Siro" in html and "W gp" in html
    assert "Qualche minuto prima, vada su" in html and "/join?lang=it" in html
    found = DIGITS.search(html)
    assert found and found.group(1) + found.group(2) != old
    assert "La stampa ha generato un nuovo codice" in html  # the staff bar, not printed
    again = html_text.unescape(
        await (await api.client.get(f"/bookings/{italian['id']}/print")).text())
    assert not DIGITS.search(again) and "già stato mostrato" in again
    assert await api.world.conn.fetchval(
        "SELECT detail::text FROM audit_log WHERE action = 'join_code_issued'") == \
        '{"purpose": "print"}'

    english = await add_patient(api.world.conn, "Grace", language="en")
    sensitive = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), service_code="psych_session", clinician_id=api.world.psychologist,
        patient_id=english))).json()
    assert (await act(api, sensitive["id"], "print")).status == 303
    html = await (await api.client.get(f"/bookings/{sensitive['id']}/print")).text()
    assert '<html lang="en" dir="ltr">' in html
    sheet = html[html.index("<main"):]
    assert "Appointment at Casa San Siro" in sheet and DIGITS.search(sheet)
    assert "A few minutes before, go to" in sheet
    assert not GIVEAWAYS.search(re.sub(r"<[^>]+>", " ", html)), sheet
    # Staff may print in another language than the patient's: Arabic, right to left.
    assert (await act(api, sensitive["id"], "print", language="ar")).status == 303
    html = await (await api.client.get(f"/bookings/{sensitive['id']}/print")).text()
    assert '<html lang="ar" dir="rtl">' in html and "موعد" in html


async def test_another_centre_and_strangers_get_what_an_unknown_booking_gets(
        api: Api, make_staff):
    b, _token, _code = await book(api, soon(5))
    unknown = b["id"] + 1000
    for who in ((Role.COORDINATOR, ("gratosoglio",)), (Role.GP, ("san-siro",))):
        api.client.session.cookie_jar.clear()
        await signed_in(api, make_staff, who[0], who[1])
        for path in ("", "/code", "/print"):
            mine = await api.client.get(f"/bookings/{b['id']}{path}")
            none = await api.client.get(f"/bookings/{unknown}{path}")
            assert mine.status == none.status == 404, (who, path)
            assert same_page(await mine.text(), b["id"]) == \
                same_page(await none.text(), unknown)
        token = await csrf_token(api.client, "/")
        for booking_id in (b["id"], unknown):
            resp = await api.client.post(f"/bookings/{booking_id}/invitation", data={
                "csrf_token": token, "action": "phone"}, allow_redirects=False)
            assert resp.status == 303
            shown = await api.client.get(resp.headers["Location"])
            assert shown.status == 404
    # A patient (no staff session) never gets there.
    api.client.session.cookie_jar.clear()
    for path in ("", "/code", "/print"):
        resp = await api.client.get(f"/bookings/{b['id']}{path}", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/login"
    resp = await api.client.post(f"/bookings/{b['id']}/invitation", data={"action": "phone"},
                                 allow_redirects=False)
    assert resp.status in (303, 401, 403)
    assert await api.world.conn.fetchval("SELECT count(*) FROM join_code_reveals") == 0
    assert await api.world.conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'join_code_issued'") == 0


async def test_an_in_person_booking_prints_without_a_code_and_has_none_to_read(
        api: Api, make_staff):
    await signed_in(api, make_staff)
    b = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), mode="in_person"))).json()
    html = await page(api, b["id"])
    assert 'value="phone"' not in html and 'value="print"' in html
    resp = await act(api, b["id"], "phone")
    refused = await api.client.get(resp.headers["Location"])
    assert refused.status == 409 and "non è una visita in video" in \
        html_text.unescape(await refused.text())
    assert (await act(api, b["id"], "print")).status == 303
    sheet = html_text.unescape(await (await api.client.get(f"/bookings/{b['id']}/print")).text())
    assert "Venga in" in sheet and not DIGITS.search(sheet) and "/join" not in sheet
    assert await api.world.conn.fetchval(
        "SELECT array_agg(action) FROM audit_log WHERE booking_id = $1", b["id"]) == \
        ["invitation_printed"]
