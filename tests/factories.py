"""Test data made the way the application makes it: staff, patients, kiosks, bookings and their
consultations, through the same functions the API and the pages call
(``server.bookings.workflow`` for bookings and status changes), so a test's set-up cannot
hold a row the application itself would refuse, and a change to how a booking is made is
seen by every test at once.

``Factories`` opens its own small pool on the test database (the workflow takes a pool, like
the app); the ``factories`` fixture closes it after the test.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from functools import cache

import asyncpg
import pytest

from server import centres, patients
from server import staff as staff_store
from server.bookings import workflow
from server.bookings.bookings import Booking, JoinWindow, NewBooking
from server.consultations import credentials, store
from server.staff import Role, Staff
from tests.conftest import SECRET_KEY
from web.i18n import Catalogues

ORIGIN = "http://127.0.0.1"
WINDOW = JoinWindow(timedelta(minutes=15), timedelta(minutes=30))
# The reason the system gives for a set-up booking that starts in the past (a visit that has
# begun, or one the patient came to): the workflow refuses the past without one.
PAST = workflow.PastReason(None, "test set-up: a visit that has already begun")
INSERT_KIOSK = """
INSERT INTO resources (centre_id, kind, name) VALUES ($1, 'kiosk', $2) RETURNING id
"""
_n = itertools.count(1)


@cache
def _catalogues() -> Catalogues:
    return Catalogues.load()


class Factories:
    def __init__(self, db_url: str, password_hash: str = "unused",
                 secret_key: str = SECRET_KEY) -> None:
        self.db_url = db_url
        self.password_hash = password_hash
        self.secret_key = secret_key
        self._pool: asyncpg.Pool | None = None
        self._synced = False

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self.db_url, min_size=0, max_size=2)
        if not self._synced:
            # Centres come from a data file the app loads at start; so do the factories.
            async with self._pool.acquire() as conn:
                await centres.sync(conn, centres.load_data())
            self._synced = True
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def context(self, window: JoinWindow = WINDOW) -> workflow.Context:
        assert self._pool is not None
        return workflow.Context(self._pool, self.secret_key, window, ORIGIN, _catalogues())

    async def staff(self, role: Role = Role.GP, centres: tuple[str, ...] = ("san-siro",), *,
                    email: str | None = None, language: str = "it",
                    full_name: str | None = None) -> Staff:
        pool = await self.pool()
        n = next(_n)
        async with pool.acquire() as conn:
            staff_id = await staff_store.create(
                conn, email=email or f"{role.value}{n}@factory.example",
                full_name=full_name or f"Test {role.value}", role=role, password="",
                password_hash=self.password_hash, language=language, centres=centres)
            found = await staff_store.get(conn, staff_id)
        assert found is not None
        return found

    async def patient(self, home_centre: str | None = "san-siro", *, given: str = "Maria",
                      family: str | None = None, born: date = date(1950, 3, 4),
                      language: str = "it", phone: str | None = None,
                      email: str | None = None) -> patients.Patient:
        pool = await self.pool()
        return await patients.create(pool, patients.NewPatient(
            given_name=given, family_name=family or f"Rossi{next(_n)}", date_of_birth=born,
            language=language, phone=phone, email=email, home_centre_id=home_centre))

    async def kiosk(self, centre: str = "san-siro") -> int:
        pool = await self.pool()
        kiosk_id: int = await pool.fetchval(INSERT_KIOSK, centre, f"Kiosk {next(_n)}")
        return kiosk_id

    async def booking(self, patient_id: int, clinician_id: int, starts_at: datetime, *,
                      service: str = "gp_visit", mode: str = "home_video",
                      minutes: int | None = None, centre: str = "san-siro",
                      kiosk_id: int | None = None, nurse_id: int | None = None,
                      created_by: int | None = None, window: JoinWindow = WINDOW,
                      send_invitations: bool = False) -> Booking:
        """A booking through ``workflow.book``; one starting in the past is placed with the
        system's reason, as a coordinator registering a visit would. Invitations are not
        queued unless asked for (most tests do not read the outbox)."""
        await self.pool()
        return await workflow.book(
            self.context(window),
            NewBooking(centre_id=centre, service_code=service, mode=mode, patient_id=patient_id,
                       clinician_id=clinician_id, starts_at=starts_at,
                       ends_at=starts_at + timedelta(minutes=minutes) if minutes else None,
                       kiosk_id=kiosk_id, nurse_id=nurse_id),
            created_by=created_by, send_invitations=send_invitations,
            past=PAST if workflow.in_the_past(starts_at) else None)

    async def set_status(self, booking_id: int, status: str, *, by: int | None,
                         reason: str | None = None) -> Booking:
        """A status change through ``workflow.set_status``, made by ``by`` (None: the system)."""
        await self.pool()
        return await workflow.set_status(self.context(), booking_id, status, reason, by=by)

    async def consultation(self, booking_id: int) -> store.Consultation:
        pool = await self.pool()
        c = await store.get_by_booking(pool, booking_id)
        assert c is not None, "only a video booking has a consultation"
        return c

    async def link(self, booking_id: int) -> str:
        """A fresh invitation link token for the booking's consultation (the patient's
        credential), as ``workflow.invite`` issues it."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            c = await store.get_by_booking(conn, booking_id)
            assert c is not None, "only a video booking has a consultation"
            return await credentials.issue_link(conn, c)

    async def code(self, booking_id: int) -> str:
        """A fresh six-digit code for the booking's consultation, as ``workflow.invite``
        issues it (with the date of birth, the kiosk's and the phone's way in)."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            c = await store.get_by_booking(conn, booking_id)
            assert c is not None, "only a video booking has a consultation"
            return await credentials.issue_code(conn, self.secret_key, c)


@pytest.fixture
async def factories(db_url: str, password_hash: str) -> AsyncIterator[Factories]:
    f = Factories(db_url, password_hash)
    yield f
    await f.close()
