"""Fixtures for the bookings tests: a small world of centres, staff, patients and kiosks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from server import centres, patients
from server import staff as staff_store
from server.bookings import bookings
from server.staff import Role
from server.timeutil import ROME
from tests.factories import Factories

WINDOW = bookings.JoinWindow(timedelta(minutes=15), timedelta(minutes=30))
_n = itertools.count()


@dataclass
class World:
    conn: asyncpg.Connection
    gp: int
    gp2: int
    psychologist: int
    nurse: int
    coordinator: int
    patient: int
    patient2: int
    kiosk: int
    kiosk2: int

    factories: Factories

    async def book(self, starts_at: datetime, *, service: str = "gp_visit",
                   mode: str = "home_video", clinician: int | None = None,
                   patient: int | None = None, kiosk: int | None = None,
                   minutes: int | None = None, centre: str = "san-siro",
                   nurse: int | None = None) -> bookings.Booking:
        """A booking by the coordinator, through the workflow (``tests.factories``)."""
        return await self.factories.booking(
            patient or self.patient, clinician or self.gp, starts_at, service=service,
            mode=mode, minutes=minutes, centre=centre, kiosk_id=kiosk, nurse_id=nurse,
            created_by=self.coordinator, window=WINDOW)


async def add_staff(conn: asyncpg.Connection, role: Role, where: tuple[str, ...],
                    password_hash: str) -> int:
    return await staff_store.create(conn, email=f"{role.value}{next(_n)}@w.example",
                                    full_name=f"W {role.value}", role=role, password="",
                                    password_hash=password_hash, centres=where)


async def add_patient(conn: asyncpg.Connection, given: str = "Maria",
                      dob: date = date(1950, 3, 4), language: str = "it",
                      email: str | None = "p@example.org",
                      home_centre: str | None = "san-siro") -> int:
    # Patients of San Siro by default: the desk staff of the tests' world may book them.
    p = await patients.create(conn, patients.NewPatient(
        given_name=given, family_name=f"Rossi{next(_n)}", date_of_birth=dob, language=language,
        phone="+39 333 1234567", email=email, home_centre_id=home_centre))
    return p.id


async def add_kiosk(conn: asyncpg.Connection, centre: str = "san-siro", name: str = "") -> int:
    kid: int = await conn.fetchval(
        "INSERT INTO resources (centre_id, kind, name) VALUES ($1, 'kiosk', $2) RETURNING id",
        centre, name or f"Kiosk {next(_n)}")
    return kid


@pytest.fixture
async def world(conn: asyncpg.Connection, password_hash: str, factories: Factories) -> World:
    await centres.sync(conn, centres.load_data())
    both = ("san-siro", "gratosoglio")
    return World(
        conn=conn,
        gp=await add_staff(conn, Role.GP, both, password_hash),
        gp2=await add_staff(conn, Role.GP, both, password_hash),
        psychologist=await add_staff(conn, Role.PSYCHOLOGIST, both, password_hash),
        nurse=await add_staff(conn, Role.NURSE, both, password_hash),
        coordinator=await add_staff(conn, Role.COORDINATOR, both, password_hash),
        patient=await add_patient(conn),
        patient2=await add_patient(conn, "Fatima", date(1985, 7, 9), "ar"),
        kiosk=await add_kiosk(conn),
        kiosk2=await add_kiosk(conn),
        factories=factories,
    )


async def open_hours(conn: asyncpg.Connection, staff_id: int, centre: str = "san-siro",
                     days: int = 60) -> None:
    """Extra hours at ``centre`` from two days ago for ``days`` days: any time then is within
    the clinician's hours, for tests that move bookings without being about hours (a
    reschedule is refused outside them)."""
    from server.bookings import availability

    now = datetime.now(ROME)
    await availability.add_exception(conn, staff_id, centre, "extra", now - timedelta(days=2),
                                     now + timedelta(days=days))


def rome(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ROME)


def future(days: int = 3, hh: int = 10, mm: int = 0) -> datetime:
    day = date.today() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ROME)


def any_of(*_: Any) -> None:
    return None


@dataclass
class Api:
    client: Any
    world: World
    coordinator: dict[str, str]
    gp: dict[str, str]
    psychologist: dict[str, str]
    nurse: dict[str, str]

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return await self.client.post(path, json=body, headers=headers or self.coordinator)

    async def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return await self.client.get(path, params=params, headers=headers or self.coordinator)

    def booking_body(self, starts_at: datetime, **over: Any) -> dict[str, Any]:
        body = {"centre_id": "san-siro", "service_code": "gp_visit", "mode": "home_video",
                "patient_id": self.world.patient, "clinician_id": self.world.gp,
                "starts_at": starts_at.isoformat()}
        return body | over


@pytest.fixture
async def api(client: Any, world: World) -> Api:
    from server.bookings import tokens

    async def bearer(staff_id: int) -> dict[str, str]:
        _, token = await tokens.create(world.conn, staff_id, "test")
        return {"Authorization": f"Bearer {token}"}

    return Api(client, world, await bearer(world.coordinator), await bearer(world.gp),
               await bearer(world.psychologist), await bearer(world.nurse))
