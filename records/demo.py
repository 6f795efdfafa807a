"""Demo notes on the bookings demo's consultations: a signed GP note with an amendment, a
nurse's measurements and a restricted psychological note, so every records page has something
to show. Idempotent."""

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
from server.consultations import care, store
from server.keys import CONFIG, POOL

log = logging.getLogger("casa.records")

GP, NURSE, PSY = ("medico.bianchi@casa.example", "infermiera.colombo@casa.example",
                  "psicologa.romano@casa.example")
GP_NOTE = {"reason": "Controllo pressione arteriosa",
           "assessment": "Ipertensione in buon compenso.",
           "plan": "Proseguire la terapia, ricontrollo tra 3 mesi.",
           "summary": "La pressione va bene. Continui con le pastiglie e torni tra tre mesi."}
AMEND_REASON = "Corretta la data del ricontrollo"
GP_NOTE_AMENDED = {**GP_NOTE, "plan": "Proseguire la terapia, ricontrollo tra 2 mesi.",
                   "summary": "La pressione va bene. Continui con le pastiglie e torni tra due "
                              "mesi.", "amend_reason": AMEND_REASON}
DEMO_MEASUREMENTS = {
    "bp_systolic": {"value": 135}, "bp_diastolic": {"value": 85}, "heart_rate": {"value": 72},
    "spo2": {"value": 97}, "temperature": {"value": 36.6},
    "glucose": {"value": 110, "unit": "mg/dL"}, "weight": {"value": 71.5},
}
async def _booking(conn: asyncpg.Connection, clinician_id: int,
                   services: list[str]) -> tuple[int, int] | None:
    """The consultation to write the demo note in, if the clinician may write there."""
    # A consultation of this clinician (the bookings demo made a week of them); writing needs
    # the clinician to care for the patient (``server.consultations.care``).
    found = await store.first_held_booking(conn, clinician_id, services)
    if found is None or not await care.caring_for(conn, clinician_id, found[1]):
        return None
    return found


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
        if gp is None or nurse is None or psy is None:
            log.warning("records demo skipped: demo staff missing")
            return
        found = await _booking(conn, gp.id, ["gp_visit"])
        if found is not None:
            note = await rec.create(conn, gp, booking_id=found[0], patient_id=found[1],
                                    category=Category.GP, content=content.parse(GP_NOTE))
            await rec.sign(conn, gp, note.id)
            await rec.amend(conn, gp, note.id, AMEND_REASON)
            await rec.save_draft(conn, gp, note.id, content.parse(GP_NOTE_AMENDED))
            await rec.sign(conn, gp, note.id)
        found = await _booking(conn, nurse.id, ["nurse_visit"])
        if found is not None:
            note = await rec.create(conn, nurse, booking_id=found[0], patient_id=found[1],
                                    category=Category.NURSE, content=content.parse({
                                        "reason": "Misurazioni al chiosco",
                                        "measurements": DEMO_MEASUREMENTS}))
            await rec.sign(conn, nurse, note.id)
        found = await _booking(conn, psy.id, ["psych_session"])
        if found is not None:
            note = await rec.create(conn, psy, booking_id=found[0], patient_id=found[1],
                                    category=Category.PSYCHOLOGICAL, content=content.parse({
                                        "reason": "Colloquio di sostegno",
                                        "assessment": "Umore in miglioramento.",
                                        "plan": "Nuovo colloquio tra due settimane."}))
            await rec.sign(conn, psy, note.id)
    log.info("records demo notes created")
