"""The patient's personal link for sending readings, by the rules of join links
(``server.consultations.credentials``): 256 random bits, only their SHA-256 stored, valid
until the plan ends, revocable. Opening the link gives the browser a session of its own in an
HttpOnly cookie (``COOKIE``) and names the form's clean address (``FORM_PATH``), which the
page puts in the address bar in place of the token, so the form's requests never carry it
(``server.monitoring.patient``)."""

from __future__ import annotations

import secrets
from datetime import datetime

import asyncpg

from server.consultations.store import hash_credential
from server.monitoring import plans
from server.monitoring.plans import Plan

COOKIE = "casa_monitor"
LINK_PATH = "/m/{token}"
FORM_PATH = "/m"

INSERT = """
INSERT INTO monitoring_credentials (plan_id, kind, token_hash, valid_until)
VALUES ($1, $2, $3, $4)
"""
REVOKE = """
UPDATE monitoring_credentials SET revoked_at = $2
WHERE plan_id = $1 AND revoked_at IS NULL
"""
RESOLVE = """
SELECT c.plan_id FROM monitoring_credentials c
JOIN monitoring_plans p ON p.id = c.plan_id
WHERE c.token_hash = $1 AND c.kind = $2 AND c.revoked_at IS NULL AND c.valid_until > $3
  AND p.ended_at IS NULL AND p.ends_at > $3 AND p.starts_at <= $3
"""


async def issue(conn: asyncpg.Connection, plan: Plan, kind: str = "link") -> str:
    """A new token of ``kind`` ('link' or 'session') for ``plan``, valid until it ends."""
    token = secrets.token_urlsafe(32)
    await conn.execute(INSERT, plan.id, kind, hash_credential(token), plan.ends_at)
    return token


async def new_link(conn: asyncpg.Connection, plan: Plan, now: datetime) -> str:
    """The plan's link, replacing every earlier one (and the sessions they opened)."""
    await conn.execute(REVOKE, plan.id, now)
    return await issue(conn, plan)


async def revoke(conn: asyncpg.Connection, plan_id: int, now: datetime) -> None:
    """The link and every session of the plan stop working at once."""
    await conn.execute(REVOKE, plan_id, now)


async def resolve(conn: asyncpg.Connection | asyncpg.Pool, token: str, kind: str,
                  now: datetime) -> Plan | None:
    """The live plan a token of ``kind`` opens, or None (unknown, revoked, expired, ended)."""
    if not token or len(token) > 100:
        return None
    plan_id = await conn.fetchval(RESOLVE, hash_credential(token), kind, now)
    return await plans.get(conn, plan_id) if plan_id is not None else None
