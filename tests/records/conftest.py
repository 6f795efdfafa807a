"""Records fixtures: a keyring file for every test, patients, and signed-in clients."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from records import content, keyring
from records.crypto import Envelope, RowId
from records.keyring import Keyring
from records.service import Records
from server import patients
from server import staff as staff_store
from server.auth import totp
from server.config import Config
from server.staff import Role
from tests.conftest import SECRET_KEY, csrf_token, login
from tests.factories import Factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def ring(tmp_path: Path) -> Keyring:
    """Written where the ``config`` fixture looks (data_dir/keyring.json) before the app starts."""
    path = tmp_path / "keyring.json"
    r = keyring.generate(path)
    keyring.save(r, path)
    return keyring.load(path)


@pytest.fixture
def rec(ring: Keyring) -> Records:
    return Records(Envelope(ring))


class PatientFactory:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.n = 0

    async def __call__(self, centre: str = "san-siro") -> int:
        self.n += 1
        conn = await asyncpg.connect(self.db_url)
        try:
            from server import centres

            await centres.sync(conn, centres.load_data())
            p = await patients.create(conn, patients.NewPatient(
                given_name=f"Test{self.n}", family_name="Paziente",
                date_of_birth=date(1950, 1, 1 + self.n % 27), home_centre_id=centre))
        finally:
            await conn.close()
        return p.id


@pytest.fixture
def make_patient(db_url: str) -> PatientFactory:
    return PatientFactory(db_url)


# A clinician's own kind of visit, when the test names none.
SERVICE_OF = {Role.GP: "gp_visit", Role.PSYCHOLOGIST: "psych_session",
              Role.NURSE: "nurse_visit"}


class BookingFactory:
    """Bookings made through the bookings workflow (``tests.factories``), at a centre where
    the clinician works (San Siro when they work there); each one an hour after the previous
    (future ones) or before (``started`` ones) so none clashes. A ``started`` booking is one
    the patient came to: the centre's desk checked her in (the fact of care of
    ``server.consultations.care``). A ``nurse_id`` makes it a kiosk booking. The service is
    the clinician's own kind of visit unless given."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.n = 0
        self.desks: dict[str, int] = {}

    async def _desk(self, conn: asyncpg.Connection, centre: str) -> int:
        """A coordinator of ``centre``, made once."""
        if centre not in self.desks:
            self.desks[centre] = await staff_store.create(
                conn, email=f"desk-{centre}-{id(self)}@test.example", full_name="Desk",
                role=Role.COORDINATOR, password="", password_hash="unused", centres=(centre,))
        return self.desks[centre]

    async def check_in(self, conn: asyncpg.Connection, booking_id: int,
                       status: str = "checked-in") -> None:
        """The patient checked in by a coordinator of the booking's centre, as at the desk."""
        centre = await conn.fetchval("SELECT centre_id FROM bookings WHERE id = $1", booking_id)
        await set_status_as(conn, booking_id, status, await self._desk(conn, centre))

    async def __call__(self, patient_id: int, clinician_id: int,
                       service: str | None = None, *, started: bool = False,
                       nurse_id: int | None = None) -> int:
        self.n += 1
        hours = -self.n if started else self.n
        f = Factories(self.db_url)
        try:
            pool = await f.pool()
            clinician = await staff_store.get(pool, clinician_id)
            assert clinician is not None and clinician.centres, "a clinician works somewhere"
            centre = "san-siro" if "san-siro" in clinician.centres else clinician.centres[0]
            service = service or SERVICE_OF[clinician.role]
            kiosk = await f.kiosk(centre) if nurse_id is not None else None
            b = await f.booking(
                patient_id, clinician_id, datetime.now(UTC) + timedelta(hours=hours),
                service=service, minutes=20, centre=centre, kiosk_id=kiosk, nurse_id=nurse_id,
                mode="home_video" if kiosk is None else "kiosk_video")
            if started:
                async with pool.acquire() as conn:
                    desk = await self._desk(conn, centre)
                await f.set_status(b.id, "checked-in", by=desk)
        finally:
            await f.close()
        return b.id


async def set_status_as(conn: asyncpg.Connection, booking_id: int, status: str,
                        staff_id: int | None) -> None:
    """Change a booking's status as ``staff_id`` would (None: the system), through the
    bookings store: the lifecycle is checked and the actor recorded as the workflow does."""
    from server.bookings import bookings

    async with conn.transaction():
        await bookings.set_status(conn, booking_id, status, by=staff_id)


async def add_participant(conn: asyncpg.Connection, booking_id: int, staff_id: int) -> int:
    """Add ``staff_id`` to the video booking's consultation, as an invitation during the call
    does; the consultation id."""
    from server.consultations import store

    c = await store.get_by_booking(conn, booking_id)
    assert c is not None, "only a video booking has a consultation"
    await store.add_participant(conn, c.id, staff_id)
    return c.id


@pytest.fixture
def make_booking(db_url: str) -> BookingFactory:
    return BookingFactory(db_url)


async def login_as(client: Any, user: staff_store.Staff, db_url: str) -> None:
    """Sign in, completing the second factor for admins (who must have one)."""
    if user.role.value == "admin":
        secret = totp.new_secret()
        conn = await asyncpg.connect(db_url)
        try:
            await staff_store.set_totp(conn, user.id, totp.seal(secret, SECRET_KEY, user.id))
        finally:
            await conn.close()
        resp = await login(client, user.email)
        assert resp.status == 303
        token = await csrf_token(client, "/login/totp")
        resp = await client.post("/login/totp", data={"code": totp.current_code(secret),
                                                      "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 303, await resp.text()
        return
    resp = await login(client, user.email)
    assert resp.status == 303, await resp.text()


async def api_headers(client: Any) -> dict[str, str]:
    return {"X-CSRF-Token": await csrf_token(client, "/home"), "Accept": "application/json"}


def run_cli(config: Config, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``casa <args>`` in a subprocess against the test database and keyring."""
    env = {**os.environ, "CASA_DATA_DIR": str(config.data_dir),
           "DATABASE_URL": config.database_url or "", "CASA_SECRET_KEY": config.secret_key,
           "CASA_KEYRING_FILE": str(config.keyring_path), "CASA_LOG_LEVEL": "WARNING"}
    code = "import sys; from server.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


async def run_cli_async(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, config, *args)


async def bulk_signed_notes(conn: asyncpg.Connection, rec: Records, *, booking_id: int,
                            patient_id: int, author_id: int, n: int,
                            category: str = "gp") -> list[int]:
    """``n`` signed one-version notes, sealed with the records envelope like any other and
    written with COPY (thousands in about a second; creating them one by one through the
    service would take minutes). Two notes share each ``created_at``, a minute apart, oldest
    first, so paging must break ties by id. The ids, oldest first."""
    ids = [r[0] for r in await conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('notes', 'id')) FROM generate_series(1, $1)", n)]
    now = datetime.now(UTC)
    notes, versions = [], []
    for i, note_id in enumerate(ids):
        at = now - timedelta(minutes=(n - i) // 2)
        raw = content.parse({"text": f"bulk note {note_id}"}).to_bytes()
        s = rec.env.seal(raw, RowId(note_id, 1, patient_id))
        notes.append((note_id, booking_id, patient_id, category, author_id, at))
        versions.append((note_id, 1, author_id, "signed", s.ciphertext, s.wrapped_key, s.kek_id,
                         at, at, at))
    async with conn.transaction():
        await conn.copy_records_to_table(
            "notes", records=notes,
            columns=["id", "booking_id", "patient_id", "category", "author_id", "created_at"])
        await conn.copy_records_to_table(
            "note_versions", records=versions,
            columns=["note_id", "version", "author_id", "status", "ciphertext", "wrapped_key",
                     "kek_id", "created_at", "saved_at", "signed_at"])
    return ids
