"""Slot computation: weekly hours in Rome time, DST weeks, leave and extra hours, bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import asyncpg

from server.bookings import bookings, slots
from server.timeutil import to_local
from tests.bookings.conftest import World, rome

# 2026: summer time starts Sunday 29 March, ends Sunday 25 October.
SPRING_SUNDAY = date(2026, 3, 29)
AUTUMN_SUNDAY = date(2026, 10, 25)


async def weekly(conn: asyncpg.Connection, staff_id: int, weekday: int, starts: str, ends: str,
                 centre: str = "san-siro") -> None:
    await conn.execute(
        "INSERT INTO availability (staff_id, centre_id, weekday, starts, ends)"
        " VALUES ($1, $2, $3, $4, $5)", staff_id, centre, weekday,
        time.fromisoformat(starts), time.fromisoformat(ends))


async def exception(conn: asyncpg.Connection, staff_id: int, kind: str, start: datetime,
                    end: datetime, centre: str | None = "san-siro") -> None:
    await conn.execute(
        "INSERT INTO availability_exceptions (staff_id, centre_id, kind, during)"
        " VALUES ($1, $2, $3, tstzrange($4, $5))", staff_id, centre, kind, start, end)


def utc_hours(found: list[slots.Slot]) -> list[str]:
    return [s.starts_at.astimezone(UTC).strftime("%m-%d %H:%M") for s in found]


async def test_monday_nine_oclock_stays_nine_across_spring_change(world: World):
    await weekly(world.conn, world.gp, 0, "09:00", "09:40")
    found = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                   day_from=date(2026, 3, 23), days=14, clinician_id=world.gp)
    # Two 20-minute slots each Monday: 08:00 UTC in winter, 07:00 UTC in summer.
    assert utc_hours(found) == ["03-23 08:00", "03-23 08:20", "03-30 07:00", "03-30 07:20"]
    assert {to_local(s.starts_at).strftime("%H:%M") for s in found} == {"09:00", "09:20"}


async def test_hours_spanning_the_spring_change_are_one_hour_shorter(world: World):
    await weekly(world.conn, world.gp, 6, "01:00", "04:00")  # Sunday 01:00-04:00 local
    found = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                   day_from=SPRING_SUNDAY, clinician_id=world.gp)
    assert len(found) == 6  # two real hours of 20-minute slots
    autumn = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                    day_from=AUTUMN_SUNDAY, clinician_id=world.gp)
    assert len(autumn) == 12  # four real hours


async def test_leave_removes_and_extra_hours_add(world: World):
    day = date(2026, 6, 8)  # a Monday
    await weekly(world.conn, world.gp, 0, "09:00", "11:00")
    await exception(world.conn, world.gp, "leave", rome(2026, 6, 8, 9, 30),
                    rome(2026, 6, 8, 10, 30), centre=None)
    await exception(world.conn, world.gp, "extra", rome(2026, 6, 8, 14), rome(2026, 6, 8, 14, 40))
    found = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                   day_from=day, clinician_id=world.gp)
    local = [to_local(s.starts_at).strftime("%H:%M") for s in found]
    assert local == ["09:00", "10:30", "14:00", "14:20"]


async def test_extra_hours_at_another_centre_do_not_count(world: World):
    await exception(world.conn, world.gp, "extra", rome(2026, 6, 8, 14), rome(2026, 6, 8, 15),
                    centre="gratosoglio")
    found = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                   day_from=date(2026, 6, 8), clinician_id=world.gp)
    assert found == []


async def test_bookings_anywhere_and_overlapping_hours_are_handled(world: World):
    day = date(2026, 6, 9)  # Tuesday
    await weekly(world.conn, world.gp, 1, "09:00", "10:00")
    await weekly(world.conn, world.gp, 1, "09:40", "10:20")  # overlapping rows merge
    b = await world.book(rome(2026, 6, 9, 9, 20), centre="gratosoglio")  # other centre
    found = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                   day_from=day, clinician_id=world.gp)
    assert [to_local(s.starts_at).strftime("%H:%M") for s in found] == ["09:00", "09:40", "10:00"]
    async with world.conn.transaction():
        await bookings.set_status(world.conn, b.id, "cancelled")
    found = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                   day_from=day, clinician_id=world.gp)
    assert len(found) == 4


async def test_patient_bookings_are_avoided_when_asked(world: World):
    await weekly(world.conn, world.gp, 1, "09:00", "10:00")
    await world.book(rome(2026, 6, 9, 9, 0), clinician=world.gp2)
    mine = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                  day_from=date(2026, 6, 9), clinician_id=world.gp,
                                  patient_id=world.patient)
    assert [to_local(s.starts_at).strftime("%H:%M") for s in mine] == ["09:20", "09:40"]


async def test_only_clinicians_delivering_the_service_and_not_past(world: World):
    await weekly(world.conn, world.gp, 1, "09:00", "10:00")
    await weekly(world.conn, world.psychologist, 1, "09:00", "10:00")
    found = await slots.list_slots(world.conn, centre_id="san-siro",
                                   service_code="psych_session", day_from=date(2026, 6, 9))
    assert {s.clinician_id for s in found} == {world.psychologist}
    assert len(found) == 1  # one 50-minute session in the hour
    late = await slots.list_slots(world.conn, centre_id="san-siro", service_code="gp_visit",
                                  day_from=date(2026, 6, 9), now=rome(2026, 6, 9, 9, 30))
    assert [to_local(s.starts_at).strftime("%H:%M") for s in late] == ["09:40"]
    assert await slots.list_slots(world.conn, centre_id="san-siro", service_code="nope",
                                  day_from=date(2026, 6, 9)) == []


def test_interval_arithmetic():
    t = [rome(2026, 1, 1, h) for h in range(8)]
    assert slots.subtract([(t[1], t[5])], [(t[2], t[3])]) == [(t[1], t[2]), (t[3], t[5])]
    assert slots.subtract([(t[1], t[2])], [(t[0], t[7])]) == []
    assert slots.merge([(t[3], t[4]), (t[1], t[3]), (t[5], t[6])]) == [(t[1], t[4]),
                                                                       (t[5], t[6])]


def _intervals(draw_list: list[tuple[int, int]]) -> list[slots.Interval]:
    base = rome(2026, 3, 29, 0).astimezone(UTC)  # in UTC, as list_slots computes
    from datetime import timedelta as td

    return [(base + td(minutes=min(a, b)), base + td(minutes=max(a, b) + 1))
            for a, b in draw_list]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SPANS = st.lists(st.tuples(st.integers(0, 1440), st.integers(0, 1440)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(free=SPANS, busy=SPANS, length=st.integers(5, 90))
def test_slots_lie_inside_free_time_and_never_touch_busy_time(free, busy, length):
    from datetime import timedelta as td

    f, b = slots.merge(_intervals(free)), _intervals(busy)
    left = slots.subtract(f, b)
    cut = slots.cut(left, td(minutes=length), rome(2026, 3, 28, 0))
    for s, e in cut:
        assert e - s == td(minutes=length)
        assert any(fs <= s and e <= fe for fs, fe in f)
        assert all(e <= bs or s >= be for bs, be in b)
    assert all(cut[i][1] <= cut[i + 1][0] for i in range(len(cut) - 1))
