"""Reminders: once per booking and offset, at the right times (time injected, never slept),
also with two instances at once; in the patient's language, discreet for a sensitive service,
with the way in; none after a cancellation; after a reschedule they follow the new time."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from server.app import create_app
from server.bookings import outbox, reminders, workflow
from server.config import ConfigError, load_config
from server.consultations import credentials
from server.timeutil import local_time_text
from tests.bookings.conftest import World, add_patient, future, open_hours
from tests.factories import ORIGIN

OFFSETS = (timedelta(hours=24), timedelta(hours=1))
MINUTE = timedelta(minutes=1)
LINK = re.compile(r"/join/([A-Za-z0-9_-]{20,})\?lang=")


@pytest.fixture
async def ctx(world: World) -> workflow.Context:
    await world.factories.pool()
    return world.factories.context()


@pytest.fixture
async def other_instance(db_url: str, ctx: workflow.Context) -> AsyncIterator[workflow.Context]:
    """A second server's context: its own pool, as another process would have."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    yield workflow.Context(pool, ctx.secret_key, ctx.window, ORIGIN, ctx.catalogues)
    await pool.close()


async def reminders_of(world: World, booking_id: int) -> list[asyncpg.Record]:
    """The reminder messages queued for a booking: queued in the transaction that claimed a
    reminder, so stamped with the same time."""
    rows: list[asyncpg.Record] = await world.conn.fetch(
        "SELECT o.channel, o.subject, o.body, o.last_error FROM outbox o "
        "JOIN booking_reminders r ON r.booking_id = o.booking_id AND r.sent_at = o.created_at "
        "WHERE o.booking_id = $1 ORDER BY o.id", booking_id)
    return rows


async def sent_for(world: World, booking_id: int) -> list[tuple[int, datetime]]:
    rows = await world.conn.fetch(
        "SELECT before_minutes, starts_at FROM booking_reminders WHERE booking_id = $1 "
        "ORDER BY sent_at, before_minutes DESC", booking_id)
    return [(r["before_minutes"], r["starts_at"]) for r in rows]


async def book(world: World, starts_at: datetime, **over: Any) -> int:
    b = await world.factories.booking(
        over.pop("patient", world.patient), over.pop("clinician", world.gp), starts_at,
        created_by=world.coordinator, send_invitations=True, **over)
    return b.id


async def test_sent_once_at_each_offset_and_not_before(world: World, ctx: workflow.Context):
    start = future(days=3, hh=10)
    bid = await book(world, start)
    day_before, hour_before = start - OFFSETS[0], start - OFFSETS[1]
    assert await reminders.send_due(ctx, OFFSETS, day_before - MINUTE) == 0
    assert await reminders_of(world, bid) == []
    assert await reminders.send_due(ctx, OFFSETS, day_before + MINUTE) == 1
    first = await reminders_of(world, bid)
    assert sorted(r["channel"] for r in first) == ["email", "sms"]
    # Again, and later on that day: still the one.
    for now in (day_before + MINUTE, day_before + 2 * MINUTE, hour_before - MINUTE):
        assert await reminders.send_due(ctx, OFFSETS, now) == 0
    assert len(await reminders_of(world, bid)) == 2
    assert await reminders.send_due(ctx, OFFSETS, hour_before) == 1
    assert await reminders.send_due(ctx, OFFSETS, hour_before + 5 * MINUTE) == 0
    assert len(await reminders_of(world, bid)) == 4
    assert await sent_for(world, bid) == [(24 * 60, start), (60, start)]
    # At and after the start, nothing more.
    for now in (start, start + MINUTE):
        assert await reminders.send_due(ctx, OFFSETS, now) == 0
    assert len(await reminders_of(world, bid)) == 4


async def test_two_instances_at_once_send_one(world: World, ctx: workflow.Context,
                                              other_instance: workflow.Context):
    starts = [future(days=3, hh=h) for h in (9, 10, 11, 12)]
    ids = [await book(world, s, patient=await add_patient(world.conn)) for s in starts]
    now = starts[-1] - OFFSETS[0] + MINUTE  # all four are due
    for _ in range(3):
        counts = await asyncio.gather(
            reminders.send_due(ctx, OFFSETS, now),
            reminders.send_due(other_instance, OFFSETS, now),
            reminders.send_due(ctx, OFFSETS, now))
        assert sum(counts) in (0, 4)
    for bid in ids:
        assert len(await sent_for(world, bid)) == 1
        assert len(await reminders_of(world, bid)) == 2


async def test_late_reminders_send_only_the_latest_that_makes_sense(world: World,
                                                                    ctx: workflow.Context):
    """The server was down all day: 30 minutes before, the one-hour reminder goes, not the
    day-before one as well."""
    start = future(days=3, hh=10)
    bid = await book(world, start)
    assert await reminders.send_due(ctx, OFFSETS, start - 30 * MINUTE) == 1
    assert await sent_for(world, bid) == [(60, start)]
    assert len(await reminders_of(world, bid)) == 2


async def test_a_booking_made_after_an_offset_gets_no_reminder_for_it(world: World,
                                                                      ctx: workflow.Context):
    start = (datetime.now().astimezone() + timedelta(hours=3)).replace(microsecond=0)
    bid = await book(world, start)
    # Made three hours before: no day-before reminder at any time; the one-hour one goes.
    for now in (start - OFFSETS[0] + MINUTE, start - 2 * timedelta(hours=1)):
        assert await reminders.send_due(ctx, OFFSETS, now) == 0
    assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[1] + MINUTE) == 1
    assert await sent_for(world, bid) == [(60, start)]


async def test_none_after_a_cancellation(world: World, ctx: workflow.Context):
    start = future(days=3, hh=10)
    bid = await book(world, start)
    await world.factories.set_status(bid, "cancelled", by=world.coordinator)
    for offset in OFFSETS:
        assert await reminders.send_due(ctx, OFFSETS, start - offset + MINUTE) == 0
    assert await sent_for(world, bid) == []
    assert await reminders_of(world, bid) == []


async def test_a_queued_reminder_of_a_cancelled_booking_is_never_sent(
        world: World, ctx: workflow.Context):
    start = future(days=3, hh=10)
    bid = await book(world, start)
    assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[0] + MINUTE) == 1
    await world.factories.set_status(bid, "cancelled", by=world.coordinator)
    await outbox.expire(world.conn)
    assert {r["last_error"] for r in await reminders_of(world, bid)} == {outbox.EXPIRED}


async def test_after_a_reschedule_reminders_follow_the_new_time(world: World,
                                                                ctx: workflow.Context):
    await open_hours(world.conn, world.gp)
    start = future(days=3, hh=10)
    bid = await book(world, start)
    assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[0] + MINUTE) == 1
    new_start = future(days=5, hh=16)
    await workflow.reschedule(ctx, bid, new_start, None)
    # The day-before reminder of the old time, queued and unsent, goes no further.
    await outbox.expire(world.conn)
    old = await reminders_of(world, bid)
    assert len(old) == 2 and {r["last_error"] for r in old} == {outbox.EXPIRED}
    # Nothing for the old time any more.
    for now in (start - OFFSETS[1] + MINUTE, start - MINUTE):
        assert await reminders.send_due(ctx, OFFSETS, now) == 0
    # The new time's reminders, the day-before one included although one went for the old.
    assert await reminders.send_due(ctx, OFFSETS, new_start - OFFSETS[0] - MINUTE) == 0
    assert await reminders.send_due(ctx, OFFSETS, new_start - OFFSETS[0] + MINUTE) == 1
    assert await reminders.send_due(ctx, OFFSETS, new_start - OFFSETS[1] + MINUTE) == 1
    assert await sent_for(world, bid) == [(24 * 60, start), (24 * 60, new_start),
                                          (60, new_start)]
    fresh = [r for r in await reminders_of(world, bid) if r["last_error"] is None]
    assert len(fresh) == 4
    assert all(local_time_text(new_start, "it") in r["body"] for r in fresh)


async def test_in_the_patients_language_with_the_way_in(world: World, ctx: workflow.Context):
    start = future(days=3, hh=10)
    bid = await book(world, start)  # Maria speaks Italian
    assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[1] + MINUTE) == 1
    by_channel = {r["channel"]: r for r in await reminders_of(world, bid)}
    sms, mail = by_channel["sms"], by_channel["email"]
    assert sms["body"].startswith("Promemoria Casa: Visita")
    assert local_time_text(start, "it") in sms["body"] and "W gp" in sms["body"]
    assert mail["subject"].startswith("Promemoria: ")
    # A link of its own that works in the window, and the code of the invitation named.
    token = LINK.search(sms["body"])
    assert token is not None and "?lang=it" in sms["body"]
    assert f"{ORIGIN}/join?lang=it" in sms["body"] and "codice del suo invito" in sms["body"]
    opened = await credentials.open_link(world.conn, token.group(1), start)
    assert opened.outcome == "ok" and opened.consultation is not None


async def test_a_sensitive_service_is_not_named_in_any_language(world: World,
                                                                ctx: workflow.Context):
    start = future(days=3, hh=11)
    # Fatima reads Arabic; an English speaker gets English.
    english = await add_patient(world.conn, "John", language="en")
    texts: dict[str, str] = {}
    for patient, lang in ((world.patient2, "ar"), (english, "en"), (world.patient, "it")):
        bid = await book(world, start, patient=patient, clinician=world.psychologist,
                         service="violence_support" if lang == "en" else "psych_session")
        assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[0] + MINUTE) == 1
        rows = await reminders_of(world, bid)
        assert len(rows) == 2, lang
        _ = ctx.catalogues.gettext(lang)
        for r in rows:
            text = texts[lang] = f"{r['subject'] or ''}\n{r['body']}"
            assert local_time_text(start, lang) in text
            assert _("Appointment at %(centre)s", centre="Casa San Siro") in text
            for secret in ("Psycholog", "Violence", "psicolog", "W psychologist",
                           _("Psychological session"), _("Violence-support listening session")):
                assert secret not in text, (lang, secret)
        start += timedelta(hours=2)
    assert "تذكير" in texts["ar"] and "Reminder" in texts["en"] and "Promemoria" in texts["it"]


async def test_kiosk_and_in_person_reminders_give_the_address(world: World,
                                                             ctx: workflow.Context):
    start = future(days=3, hh=10)
    kiosk = await book(world, start, mode="kiosk_video", kiosk_id=world.kiosk)
    visit = await book(world, start + timedelta(hours=1), mode="in_person",
                       patient=world.patient2)
    assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[0] + MINUTE) == 1
    assert await reminders.send_due(ctx, OFFSETS, start - OFFSETS[0] + 61 * MINUTE) == 1
    for bid in (kiosk, visit):
        for r in await reminders_of(world, bid):
            assert "Piazzale Selinunte 2" in r["body"]
            assert "/join/" not in r["body"]


async def test_the_loop_asks_the_injected_clock(world: World, config: Any,
                                                aiohttp_client: Any):
    start = future(days=3, hh=10)
    bid = await book(world, start)
    app = create_app(config)
    now = [start - OFFSETS[0] - MINUTE]
    app[reminders.CLOCK] = lambda: now[0]
    await aiohttp_client(app)
    assert await reminders.pass_once(app) == 0
    now[0] = start - OFFSETS[0] + MINUTE
    assert await reminders.pass_once(app) == 1
    assert await reminders.pass_once(app) == 0
    assert len(await sent_for(world, bid)) == 1


def test_offsets_are_configured_by_casa_reminders() -> None:
    base = {"CASA_SECRET_KEY": "k" * 40}
    assert load_config(base).reminders == OFFSETS
    assert load_config(base | {"CASA_REMINDERS": ""}).reminders == ()
    assert load_config(base | {"CASA_REMINDERS": "30m, 2d,1h,2d"}).reminders == (
        timedelta(days=2), timedelta(hours=1), timedelta(minutes=30))
    for bad in ("24", "1w", "0h", "-1h", "15d", "h", "１h"):
        with pytest.raises(ConfigError, match="CASA_REMINDERS"):
            load_config(base | {"CASA_REMINDERS": bad})
    assert reminders.windows(OFFSETS) == ([24 * 60, 60], [60, 0])
