"""A seeded November at two centres, made through the real workflow (``tests.factories``), and
the figures the report must give, worked out here from the seed itself, not from the report's
SQL. Only what the workflow cannot set at a chosen instant is written directly: when a booking
was made, and when the patient arrived, was let in and left (the clock of a past month)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import asyncpg
import pytest

from records import audit
from server.consultations import store
from server.staff import Role, Staff
from server.timeutil import local_instant
from tests.bookings.conftest import api, world  # noqa: F401 (fixtures)
from tests.browser.conftest import live, live_server  # noqa: F401 (fixtures)
from tests.factories import Factories

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
QUERY = "from=2026-11-01&to=2026-11-30"


@dataclass(frozen=True)
class Spec:
    """One booking of the seed and what happened to it."""

    centre: str
    service: str
    mode: str
    outcome: str              # attended, noshow, cancelled
    patient: str              # a key of Seed.patients
    lead_days: float = 3.0    # booked this long before the start
    wait_min: float | None = None
    call_min: float | None = None
    nurse: str = ""           # "column" (the consultation's) or "audit" (the console's entry)
    guest: bool = False
    invited: bool = False
    relay: bool = False       # a participant's media went through TURN (media_path events)
    sound_only: bool = False  # a participant's page fell back to sound only

    @property
    def sensitive(self) -> bool:
        return self.service in ("psych_session", "psychiatric_followup", "violence_support")


def _seed_specs() -> list[Spec]:
    out: list[Spec] = []
    # San Siro: GP from home, eight came, with known waits and lengths; two with an
    # interpreter by guest link, one with a colleague invited; six relayed through TURN
    # (enough to be shown), two fell back to sound only (one of them relayed too).
    for i in range(8):
        out.append(Spec("san-siro", "gp_visit", "home_video", "attended", f"p{i}",
                        lead_days=1.0 + i, wait_min=2.0 + i, call_min=10.0 + 2 * i,
                        guest=i in (1, 2), invited=i == 3, relay=i < 6,
                        sound_only=i in (5, 7)))
    # At a kiosk, six came, a nurse declared herself with five (three still on the
    # consultation, two handed over since: only the audit entry is left).
    for i in range(8, 14):
        out.append(Spec("san-siro", "gp_visit", "kiosk_video", "attended", f"p{i}",
                        lead_days=10.0, wait_min=5.0, call_min=15.0,
                        nurse="column" if i < 11 else "audit" if i < 13 else ""))
    out += [Spec("san-siro", "gp_visit", "home_video", "noshow", f"p{i}") for i in (14, 15, 16)]
    out += [Spec("san-siro", "gp_visit", "home_video", "cancelled", f"p{i}") for i in (17, 18)]
    # In person: three second visits of patients already counted, one nurse visit.
    out += [Spec("san-siro", "gp_visit", "in_person", "attended", f"p{i}", lead_days=20.0)
            for i in (0, 1, 2)]
    out.append(Spec("san-siro", "nurse_visit", "in_person", "attended", "p19", lead_days=2.0))
    # Sensitive services: reported only together.
    out += [Spec("san-siro", "psych_session", "home_video", "attended", f"p{i}", lead_days=7.0,
                 wait_min=1.0, call_min=50.0) for i in (20, 21, 22)]
    out.append(Spec("san-siro", "violence_support", "home_video", "attended", "p23",
                    lead_days=1.0, wait_min=1.0, call_min=60.0))
    # Gratosoglio: six GP visits from home, one relayed.
    out += [Spec("gratosoglio", "gp_visit", "home_video", "attended", f"q{i}", lead_days=4.0,
                 wait_min=3.0, call_min=12.0, relay=i == 0) for i in range(6)]
    return out


LANGUAGES = {**{f"p{i}": "it" for i in range(10)}, **{f"p{i}": "ar" for i in range(10, 14)},
             **{f"p{i}": "zh" for i in range(14, 19)}, "p19": "uk",
             **{f"p{i}": "es" for i in range(20, 24)}, **{f"q{i}": "ro" for i in range(6)}}
# Came before November: returning patients.
RETURNING = ("p0", "p1", "p2", "q0")


@dataclass
class Seed:
    specs: list[Spec]
    patients: dict[str, int] = field(default_factory=dict)
    bookings: dict[int, Spec] = field(default_factory=dict)
    coordinator: Staff | None = None      # San Siro's
    other_coordinator: Staff | None = None  # Gratosoglio's
    admin: Staff | None = None
    gp: Staff | None = None
    psychologist: Staff | None = None
    nurse: Staff | None = None


def _start(n: int) -> datetime:
    """The n-th booking's start: four a day from 2 November, 9:00 to 12:00 in Milan."""
    return local_instant(date(2026, 11, 2) + timedelta(days=n // 4), time(9 + n % 4))


@pytest.fixture
async def seed(factories: Factories, conn: asyncpg.Connection) -> Seed:
    f = factories
    s = Seed(_seed_specs())
    s.coordinator = await f.staff(Role.COORDINATOR, ("san-siro",), language="en")
    s.other_coordinator = await f.staff(Role.COORDINATOR, ("gratosoglio",), language="en")
    s.admin = await f.staff(Role.ADMIN, ("san-siro", "gratosoglio"), language="en")
    s.gp = await f.staff(Role.GP, ("san-siro", "gratosoglio"), language="en")
    s.psychologist = await f.staff(Role.PSYCHOLOGIST, ("san-siro",), language="en")
    s.nurse = await f.staff(Role.NURSE, ("san-siro",), language="en")
    colleague = await f.staff(Role.GP, ("san-siro",))
    kiosk = await f.kiosk("san-siro")
    for key, lang in LANGUAGES.items():
        home = "gratosoglio" if key.startswith("q") else "san-siro"
        s.patients[key] = (await f.patient(home, language=lang)).id
    by_role = {"gp_visit": s.gp, "nurse_visit": s.nurse, "psych_session": s.psychologist,
               "violence_support": s.psychologist}
    # October: the returning patients' earlier visits (and one entered in error, which makes
    # nobody returning: p3 stays new).
    for n, key in enumerate(RETURNING):
        b = await f.booking(s.patients[key], s.gp.id,
                            local_instant(date(2026, 10, 5 + n), time(10)))
        await f.set_status(b.id, "arrived", by=s.coordinator.id)
    wrong = await f.booking(s.patients["p3"], s.gp.id, local_instant(date(2026, 10, 20),
                                                                       time(10)))
    await f.set_status(wrong.id, "entered-in-error", by=s.coordinator.id)
    for n, spec in enumerate(s.specs):
        clinician = by_role[spec.service]
        assert clinician is not None
        start = _start(n)
        b = await f.booking(s.patients[spec.patient], clinician.id, start, service=spec.service,
                            mode=spec.mode, centre=spec.centre,
                            kiosk_id=kiosk if spec.mode == "kiosk_video" else None,
                            nurse_id=s.nurse.id if spec.mode == "kiosk_video" else None)
        s.bookings[b.id] = spec
        await conn.execute("UPDATE bookings SET created_at = $2 WHERE id = $1", b.id,
                           start - timedelta(days=spec.lead_days))
        if spec.outcome == "attended":
            await f.set_status(b.id, "arrived", by=s.coordinator.id)
            await f.set_status(b.id, "fulfilled", by=s.coordinator.id)
        else:
            await f.set_status(b.id, spec.outcome, by=s.coordinator.id)
        if spec.mode == "in_person":
            continue
        c = await f.consultation(b.id)
        if spec.wait_min is not None and spec.call_min is not None:
            arrived = start - timedelta(minutes=1)
            admitted = arrived + timedelta(minutes=spec.wait_min)
            await conn.execute(
                "UPDATE consultations SET first_arrived_at = $2, admitted_at = $3,"
                " ended_at = $4, state = 'ended' WHERE id = $1", c.id, arrived, admitted,
                admitted + timedelta(minutes=spec.call_min))
        if spec.nurse == "column":
            await store.set_nurse_present(conn, c.id, s.nurse.id)
        elif spec.nurse == "audit":
            await audit.append(conn, action="nurse_present", actor_staff_id=s.nurse.id,
                               actor_kind="staff", patient_id=s.patients[spec.patient],
                               booking_id=b.id, detail={})
        if spec.guest:
            await store.record_event(conn, c.id, "participant_joined",
                                     detail={"participant": "guest:1", "role": "guest"})
        if spec.invited:
            await store.add_participant(conn, c.id, colleague.id)
        # As signalling records a media_report: each participant's page once at connection,
        # again when a flag turns true. A report saying nothing (the clinician's, here) must
        # not count.
        if spec.relay or spec.sound_only:
            await store.record_event(conn, c.id, "media_path", detail={
                "relay": False, "sound_only": False, "role": "clinician"})
            await store.record_event(conn, c.id, "media_path", detail={
                "relay": spec.relay, "sound_only": False, "role": "patient"})
            if spec.sound_only:
                await store.record_event(conn, c.id, "media_path", detail={
                    "relay": spec.relay, "sound_only": True, "role": "patient"})
    return s


