"""Demo notes: a signed GP note with an amendment, a nurse's measurements and a restricted
psychological note, so every records page has something to show. Idempotent."""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web

from records import content, keyring
from records.access import Category
from records.crypto import Envelope
from records.keys import RECORDS
from records.service import Records
from server import staff as staff_store
from server.keys import CONFIG, POOL

log = logging.getLogger("casa.records")

GP, NURSE, PSY = ("medico.bianchi@casa.example", "infermiera.colombo@casa.example",
                  "psicologa.romano@casa.example")
# Synthetic consultation ids used when the bookings module has not seeded any bookings.
FALLBACK_BOOKING_BASE = 900_000

DEMO_MEASUREMENTS = {
    "bp_systolic": {"value": 135}, "bp_diastolic": {"value": 85}, "heart_rate": {"value": 72},
    "spo2": {"value": 97}, "temperature": {"value": 36.6},
    "glucose": {"value": 110, "unit": "mg/dL"}, "weight": {"value": 71.5},
}
PICK_BOOKING = """
SELECT id FROM bookings WHERE patient_id = $1 AND clinician_id = $2 ORDER BY id LIMIT 1
"""


async def _booking(conn: asyncpg.Connection, patient_id: int, clinician_id: int,
                   n: int) -> int:
    if await conn.fetchval("SELECT to_regclass('bookings') IS NOT NULL"):
        found = await conn.fetchval(PICK_BOOKING, patient_id, clinician_id)
        if found is not None:
            return int(found)
    return FALLBACK_BOOKING_BASE + n


async def seed_demo(app: web.Application) -> None:
    """Create the keyring on the first demo run and a few notes; does nothing the second time."""
    config = app[CONFIG]
    ring = keyring.load_or_create(config.keyring_path)
    rec = app.get(RECORDS) or Records(Envelope(ring))
    pool = app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM notes)"):
            return
        gp, nurse, psy = [await staff_store.get_by_email(conn, e) for e in (GP, NURSE, PSY)]
        # Demo patients 0 and 1 live in Gratosoglio and San Siro, where the GP and nurse work.
        pids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM patients WHERE codice_fiscale LIKE 'XXDEMO%' ORDER BY id LIMIT 2")]
        if gp is None or nurse is None or psy is None or len(pids) < 2:
            log.warning("records demo skipped: demo staff or patients missing")
            return
        b1 = await _booking(conn, pids[0], gp.id, 1)
        note = await rec.create(conn, gp, booking_id=b1, patient_id=pids[0],
                                category=Category.GP, content=content.parse({
                                    "reason": "Controllo pressione arteriosa",
                                    "assessment": "Ipertensione in buon compenso.",
                                    "plan": "Proseguire la terapia, ricontrollo tra 3 mesi.",
                                    "summary": "La pressione va bene. Continui con le pastiglie "
                                               "e torni tra tre mesi."}))
        await rec.sign(conn, gp, note.id)
        await rec.amend(conn, gp, note.id, "Corretta la data del ricontrollo")
        await rec.save_draft(conn, gp, note.id, content.parse({
            "reason": "Controllo pressione arteriosa",
            "assessment": "Ipertensione in buon compenso.",
            "plan": "Proseguire la terapia, ricontrollo tra 2 mesi.",
            "summary": "La pressione va bene. Continui con le pastiglie e torni tra due mesi.",
            "amend_reason": "Corretta la data del ricontrollo"}))
        await rec.sign(conn, gp, note.id)
        b2 = await _booking(conn, pids[1], nurse.id, 2)
        note = await rec.create(conn, nurse, booking_id=b2, patient_id=pids[1],
                                category=Category.NURSE, content=content.parse({
                                    "reason": "Misurazioni al chiosco",
                                    "measurements": DEMO_MEASUREMENTS}))
        await rec.sign(conn, nurse, note.id)
        b3 = await _booking(conn, pids[1], psy.id, 3)
        note = await rec.create(conn, psy, booking_id=b3, patient_id=pids[1],
                                category=Category.PSYCHOLOGICAL, content=content.parse({
                                    "reason": "Colloquio di sostegno",
                                    "assessment": "Umore in miglioramento.",
                                    "plan": "Nuovo colloquio tra due settimane."}))
        await rec.sign(conn, psy, note.id)
    log.info("records demo notes created")
