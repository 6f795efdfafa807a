"""Demo data: the five centres, staff of every role, a few dozen patients. Idempotent: running
``casa demo`` again adds nothing that is already there."""

from __future__ import annotations

import logging
from datetime import date

import asyncpg
from aiohttp import web

from records import demo as records_demo
from server import centres, patients, staff
from server.auth import passwords, totp
from server.bookings import demo as bookings_demo
from server.config import Config
from server.keys import CONFIG, POOL
from server.monitoring import demo as monitoring_demo
from server.staff import Role

log = logging.getLogger("casa.demo")

# Printed on purpose at start-up: demo mode only.
DEMO_PASSWORD = "casa-demo-2026"

ALL = ("gratosoglio", "san-siro", "mazzini", "molise-calvairate", "giambellino-lorenteggio")
DEMO_STAFF: list[tuple[str, str, Role, str, tuple[str, ...]]] = [
    ("admin@casa.example", "Alessandra Conti", Role.ADMIN, "it", ALL),
    ("coordinatrice@casa.example", "Giulia Marchetti", Role.COORDINATOR, "it", ALL),
    ("medico.bianchi@casa.example", "Dott. Luca Bianchi", Role.GP, "it",
     ("san-siro", "gratosoglio")),
    ("medica.ferrari@casa.example", "Dott.ssa Sara Ferrari", Role.GP, "en",
     ("mazzini", "molise-calvairate", "giambellino-lorenteggio")),
    ("psicologa.romano@casa.example", "Dott.ssa Elena Romano", Role.PSYCHOLOGIST, "it", ALL),
    ("infermiera.colombo@casa.example", "Marta Colombo", Role.NURSE, "it",
     ("san-siro", "gratosoglio")),
    ("infermiere.ricci@casa.example", "Paolo Ricci", Role.NURSE, "it",
     ("mazzini", "molise-calvairate", "giambellino-lorenteggio")),
]

_GIVEN = ["Maria", "Giuseppe", "Fatima", "Wei", "Ana", "Mohamed", "Olena", "Rosa", "Ahmed",
          "Li", "Carmen", "Ion", "Giovanna", "Jose", "Amina", "Franco", "Mei", "Elena"]
_FAMILY = ["Rossi", "Esposito", "El Amrani", "Chen", "Reyes", "Hassan", "Kovalenko", "Greco",
           "Rahman", "Zhang", "Garcia", "Popescu", "Russo", "Santos", "Diallo", "Galli", "Huang",
           "Moretti"]
_LANG = ["it", "it", "ar", "zh", "es", "ar", "uk", "it", "bn", "zh", "es", "ro", "it", "tl",
         "fr", "it", "zh", "en"]
_MONTHS = "ABCDEHLMPRST"


def demo_codice_fiscale(i: int) -> str:
    """A well-formed, checksummed codice fiscale that is plainly synthetic (XX prefix)."""
    body = f"XXDEMO{40 + i % 50:02d}{_MONTHS[i % 12]}{1 + i % 28:02d}F205"
    return body + patients.control_character(body)


def demo_patients() -> list[patients.NewPatient]:
    out = []
    for i in range(36):
        g, f = _GIVEN[i % len(_GIVEN)], _FAMILY[(i * 7) % len(_FAMILY)]
        out.append(patients.NewPatient(
            given_name=g, family_name=f,
            date_of_birth=date(1930 + (i * 3) % 70, 1 + i % 12, 1 + i % 28),
            phone=f"+39 333 000 {i:04d}", email=f"paziente{i}@example.org",
            language=_LANG[i % len(_LANG)], codice_fiscale=demo_codice_fiscale(i),
            home_centre_id=ALL[i % len(ALL)]))
    return out


INSERT_PATIENT = """
INSERT INTO patients (given_name, family_name, date_of_birth, phone, email, language,
                      codice_fiscale, home_centre_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (codice_fiscale) DO NOTHING
"""


async def seed_core(conn: asyncpg.Connection, config: Config) -> None:
    await centres.sync(conn, centres.load_data())
    shared_hash: str | None = None
    for email, name, role, lang, where in DEMO_STAFF:
        if await staff.get_by_email(conn, email) is not None:
            continue
        shared_hash = shared_hash or passwords.hash_password(DEMO_PASSWORD)
        staff_id = await staff.create(conn, email=email, full_name=name, role=role,
                                      password="", password_hash=shared_hash, language=lang,
                                      centres=where)
        if role is Role.ADMIN:
            secret = totp.new_secret()
            await staff.set_totp(conn, staff_id, totp.seal(secret, config.secret_key, staff_id))
    for p in demo_patients():
        await conn.execute(INSERT_PATIENT, p.given_name, p.family_name, p.date_of_birth, p.phone,
                           p.email, p.language, p.codice_fiscale, p.home_centre_id)


async def seed(app: web.Application) -> None:
    pool = app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        await seed_core(conn, app[CONFIG])
    # Bookings first: the records demo writes its notes in the bookings demo's consultations.
    await bookings_demo.seed_demo(app)
    await records_demo.seed_demo(app)
    await monitoring_demo.seed_demo(app)
    app[_ADMIN_TOTP] = await _admin_totp_key(pool, app[CONFIG])


_ADMIN_TOTP = web.AppKey("demo_admin_totp", str)


async def _admin_totp_key(pool: asyncpg.Pool, config: Config) -> str:
    admin = await staff.get_by_email(pool, DEMO_STAFF[0][0])
    assert admin is not None
    sealed, _ = await staff.get_totp(pool, admin.id)
    assert sealed is not None
    return totp.display_secret(totp.unseal(sealed, config.secret_key, admin.id))


def announce(config: Config, app: web.Application | None = None) -> None:
    scheme = "https" if config.tls_cert else "http"
    lines = [
        "",
        f"Casa demo is running: {scheme}://{config.host}:{config.port}/",
        f"Every demo account's password: {DEMO_PASSWORD}",
    ]
    for email, _name, role, _lang, _where in DEMO_STAFF:
        lines.append(f"  {role.value:<13} {email}")
    if app is not None and _ADMIN_TOTP in app:
        lines.append(f"The admin account also asks for a code: add this key to an "
                     f"authenticator app: {app[_ADMIN_TOTP]}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
