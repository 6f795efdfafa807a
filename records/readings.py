"""Monitoring readings: sealed like notes, opened only here.

Each reading's content (``records.vitals.Reading``) is encrypted with its own AES-256-GCM data
key; that key is wrapped by a key derived from the patient's key alone
(``HKDF(patient key, "casa-reading-wrap-v1")``; ``kek_id`` is the patient key's id), kept only
in the keyring file. Readings have no day key: notes' retention does not reach them, and the
patient's erasure does (``erase_patient`` blanks every wrapped key, ``records.subkeys``
destroys the patient key, and the keyring file loses it in ``sweep``). The associated data
binds ciphertext and wrapped key to the reading's id, plan, patient, measurement and time, so
a row moved or edited in the database fails as an ``IntegrityError``.

Whether a reading is outside the patient's thresholds is decided here too, where its values
are in the clear; only the yes/no leaves (the alert's reason, and ``out_of_range``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from records import access, audit, subkeys
from records.crypto import Envelope, Sealed
from records.errors import Denied, ErasedError
from records.vitals import Reading
from server.staff import Staff

WRAP_INFO = b"casa-reading-wrap-v1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Thresholds = dict[str, dict[str, float]]  # part -> {"low": x, "high": y}, either optional


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class ReadingId:
    """Where a reading's sealed content belongs."""

    reading_id: int
    plan_id: int
    patient_id: int
    measurement: str
    measured_at: datetime

    def _fields(self) -> str:
        return (f"{self.reading_id}|{self.plan_id}|{self.patient_id}|{self.measurement}|"
                f"{_micros(self.measured_at)}")

    def content_aad(self) -> bytes:
        return f"casa-reading-v1|{self._fields()}".encode()

    def wrap_aad(self, kek_id: str) -> bytes:
        return f"casa-reading-dek-v1|{self._fields()}|{kek_id}".encode()

    def describe(self) -> str:
        return f"reading {self.reading_id}"


class ReadingEnvelope(Envelope):
    """The records envelope with readings' wrapping key: the patient's key alone."""

    def wrapping_key(self, kek_id: str) -> bytes:
        return HKDF(hashes.SHA256(), 32, None, WRAP_INFO).derive(self.ring.subkey(kek_id))


def outside(reading: Reading, thresholds: Thresholds) -> list[str]:
    """The parts of ``reading`` beyond the patient's limits (a limit is inclusive)."""
    out = []
    for part, value in reading.values.items():
        limits = thresholds.get(part, {})
        low, high = limits.get("low"), limits.get("high")
        if (low is not None and value < low) or (high is not None and value > high):
            out.append(part)
    return out


@dataclass(frozen=True)
class Stored:
    """A reading as read back: ``content`` None when erased or not opened (metadata only)."""

    id: int
    plan_id: int
    patient_id: int
    measurement: str
    measured_at: datetime
    received_at: datetime
    source: str
    entered_by: int | None
    out_of_range: bool
    content: Reading | None

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "plan_id": self.plan_id, "measurement": self.measurement,
                "measured_at": self.measured_at.isoformat(), "source": self.source,
                "out_of_range": self.out_of_range, "erased": self.content is None,
                "values": self.content.values if self.content else None,
                "text": self.content.text if self.content else None}


NEXT_ID = "SELECT nextval(pg_get_serial_sequence('monitoring_readings', 'id'))"
INSERT = """
INSERT INTO monitoring_readings (id, plan_id, patient_id, measurement, measured_at, source,
                                 entered_by, out_of_range, ciphertext, wrapped_key, kek_id,
                                 client_ref)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""
SENT_BEFORE = "SELECT id FROM monitoring_readings WHERE plan_id = $1 AND client_ref = $2"


async def add(conn: asyncpg.Connection, env: ReadingEnvelope, *, plan_id: int, patient_id: int,
              measurement: str, measured_at: datetime, source: str, entered_by: int | None,
              reading: Reading, thresholds: Thresholds,
              client_ref: UUID | None = None) -> tuple[int, list[str]]:
    """Seal and store one reading (in the caller's transaction); its id and the parts out of
    the patient's range."""
    beyond = outside(reading, thresholds)
    reading_id: int = await conn.fetchval(NEXT_ID)
    kek_id = await subkeys.patient_key_id(conn, env.ring, patient_id)
    row = ReadingId(reading_id, plan_id, patient_id, measurement, measured_at)
    s = env.seal(reading.to_bytes(), row, kek_id)
    await conn.execute(INSERT, reading_id, plan_id, patient_id, measurement, measured_at, source,
                       entered_by, bool(beyond), s.ciphertext, s.wrapped_key, s.kek_id,
                       client_ref)
    return reading_id, beyond


SELECT = """
SELECT id, plan_id, patient_id, measurement, measured_at, received_at, source, entered_by,
       out_of_range, ciphertext, wrapped_key, kek_id
FROM monitoring_readings
WHERE patient_id = $1 AND ($2::bigint IS NULL OR plan_id = $2)
  AND ($3::text IS NULL OR measurement = $3) AND measured_at >= $4
ORDER BY measured_at, id
LIMIT $5
"""
# A trend or a list reads at most this many readings (a year of four a day, and some).
MAX_ROWS = 2000


async def opened(conn: asyncpg.Connection | asyncpg.Pool, env: ReadingEnvelope, patient_id: int,
                 *, plan_id: int | None = None, measurement: str | None = None,
                 since: datetime = EPOCH, limit: int = MAX_ROWS) -> list[Stored]:
    """The patient's readings, opened, oldest first. The caller checked access and audits."""
    out = []
    for r in await conn.fetch(SELECT, patient_id, plan_id, measurement, since, limit):
        row = ReadingId(r["id"], r["plan_id"], r["patient_id"], r["measurement"],
                        r["measured_at"])
        try:
            content: Reading | None = Reading.from_bytes(env.open(
                Sealed(r["ciphertext"], r["wrapped_key"], r["kek_id"]), row))
        except ErasedError:
            content = None
        out.append(Stored(r["id"], r["plan_id"], r["patient_id"], r["measurement"],
                          r["measured_at"], r["received_at"], r["source"], r["entered_by"],
                          r["out_of_range"], content))
    return out


ERASE = """
UPDATE monitoring_readings SET wrapped_key = NULL
WHERE patient_id = $1 AND wrapped_key IS NOT NULL RETURNING id
"""


async def erase_patient(conn: asyncpg.Connection, patient_id: int) -> list[int]:
    """Blank every data key of the patient's readings (the patient's key goes with erasure)."""
    return [r["id"] for r in await conn.fetch(ERASE, patient_id)]



def _actor(user: Staff | None) -> dict[str, Any]:
    return {"actor_staff_id": user.id if user else None,
            "actor_kind": "staff" if user else "patient"}


class Readings:
    """Operations on readings: each checks ``records.access.monitoring_allowed`` (a patient's
    own link is checked by its caller) and appends to the audit log in the caller's
    transaction."""

    def __init__(self, env: ReadingEnvelope) -> None:
        self.env = env

    async def check(self, conn: asyncpg.Connection | asyncpg.Pool, user: Staff,
                    patient_id: int) -> None:
        """``Denied`` unless ``user`` may see this patient's monitoring: alike whether the
        patient exists or not."""
        if not await access.may_monitor(conn, user, patient_id):
            raise Denied(f"monitoring of patient {patient_id} refused")

    async def submit(self, conn: asyncpg.Connection, user: Staff | None, *, plan_id: int,
                     patient_id: int, measurement: str, measured_at: datetime, source: str,
                     reading: Reading, thresholds: Thresholds,
                     client_ref: UUID | None = None) -> tuple[int, list[str]] | None:
        """Store a reading: by ``user`` (checked), or by the patient (``None``: her link was
        checked by the caller). Its id and the parts out of range; None when the reading of
        ``client_ref`` was stored already (sent again)."""
        if user is not None:
            await self.check(conn, user, patient_id)
        if client_ref is not None and await conn.fetchval(SENT_BEFORE, plan_id, client_ref):
            return None
        reading_id, beyond = await add(
            conn, self.env, plan_id=plan_id, patient_id=patient_id, measurement=measurement,
            measured_at=measured_at, source=source, entered_by=user.id if user else None,
            reading=reading, thresholds=thresholds, client_ref=client_ref)
        await audit.append(conn, action="reading_write", **_actor(user), patient_id=patient_id,
                           booking_id=None, detail={"reading_id": reading_id, "plan_id": plan_id,
                                                    "source": source})
        return reading_id, beyond

    async def read(self, conn: asyncpg.Connection, user: Staff, patient_id: int, *,
                   plan_id: int | None = None, measurement: str | None = None,
                   since: datetime = EPOCH, action: str = "read") -> list[Stored]:
        """The patient's readings opened for ``user`` (checked); audited as ``action`` with
        how many and which measurement, never the values."""
        await self.check(conn, user, patient_id)
        found = await opened(conn, self.env, patient_id, plan_id=plan_id,
                             measurement=measurement, since=since)
        await audit.append(conn, action=action, **_actor(user), patient_id=patient_id,
                           booking_id=None, detail={"part": "monitoring", "plan_id": plan_id,
                                                    "measurement": measurement,
                                                    "readings": len(found)})
        return found

    async def for_export(self, conn: asyncpg.Connection, user: Staff,
                         patient_id: int, fmt: str) -> list[Stored]:
        """The readings in the patient's export: those ``user`` may see, none otherwise."""
        if not await access.may_monitor(conn, user, patient_id):
            return []
        found = await opened(conn, self.env, patient_id)
        if found:
            await audit.append(conn, action="export", **_actor(user), patient_id=patient_id,
                               booking_id=None, detail={"part": "monitoring", "format": fmt,
                                                        "readings": len(found)})
        return [r for r in found if r.content is not None]
