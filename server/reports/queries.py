"""The report's one query: the facts of every booking whose appointment starts in the period,
read from what bookings, the consultation core, signalling and the nurse console record
(docs/reports.md says which column comes from where). Aggregation is in ``figures``."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from server.consultations import care
from server.reports.model import BookingFacts, MonitoringFacts, Period
from server.timeutil import local_midnight

# $1, $2: the period's bounds (Milan midnights); $3: the centres covered.
# - cancelled_by: who made the last change to 'cancelled' (migration 0110's trigger).
# - new_patient: no booking of hers (any centre, any status but an error) starts before $1.
# - nurse_present: the declaration is on the consultation until a hand-over clears it; the
#   nurse console's audit entry keeps it after that (entries from two days before the
#   period on: a declaration comes during the visit, and the audit log's time index serves
#   the bound).
# - guest_joined: a participant_joined event of role guest (signalling's arrivals).
# - relayed, sound_only: a media_path event of any participant saying so (signalling's
#   media_report, migration 0320).
FACTS = f"""
WITH picked AS (
    SELECT b.id, b.centre_id, b.service_code, s.sensitive, b.mode, b.status, b.patient_id,
           p.language, b.created_at, lower(b.during) AS starts_at,
           to_char(lower(b.during) AT TIME ZONE 'Europe/Rome', 'YYYY-MM') AS month
    FROM bookings b
    JOIN services s ON s.code = b.service_code
    JOIN patients p ON p.id = b.patient_id
    WHERE b.during && tstzrange($1, $2)
      AND lower(b.during) >= $1 AND lower(b.during) < $2
      AND b.status <> 'entered-in-error'
      AND b.centre_id = ANY($3::text[])
), declared AS (
    SELECT DISTINCT booking_id FROM audit_log
    WHERE action = 'nurse_present' AND at >= $1 - interval '2 days'
      AND booking_id IS NOT NULL
)
SELECT pk.*,
       (SELECT ch.by_kind FROM booking_status_changes ch
        WHERE ch.booking_id = pk.id AND ch.to_status = 'cancelled'
        ORDER BY ch.at DESC, ch.id DESC LIMIT 1) AS cancelled_by,
       NOT EXISTS (SELECT 1 FROM bookings e
                   WHERE e.patient_id = pk.patient_id AND e.status <> 'entered-in-error'
                     AND lower(e.during) < $1) AS new_patient,
       k.id IS NOT NULL AS video, k.first_arrived_at, k.admitted_at, k.ended_at,
       (k.nurse_present_at IS NOT NULL
        OR pk.id IN (SELECT booking_id FROM declared)) AS nurse_present,
       EXISTS (SELECT 1 FROM consultation_events ev
               WHERE ev.consultation_id = k.id AND ev.event = 'participant_joined'
                 AND ev.detail->>'role' = 'guest') AS guest_joined,
       EXISTS (SELECT 1 FROM consultation_events ev
               WHERE ev.consultation_id = k.id AND ev.event = 'media_path'
                 AND ev.detail->>'relay' = 'true') AS relayed,
       EXISTS (SELECT 1 FROM consultation_events ev
               WHERE ev.consultation_id = k.id AND ev.event = 'media_path'
                 AND ev.detail->>'sound_only' = 'true') AS sound_only,
       {care.colleague_added_sql("k.id")} AS staff_invited
FROM picked pk
LEFT JOIN consultations k ON k.booking_id = pk.id
ORDER BY pk.starts_at, pk.id
"""

# Tele-monitoring (migration 0600): every patient with a plan in force at some time in the
# period, counted at her home centre (a plan has no centre of its own; a patient without one is
# not reported), and what her plans' readings and alerts did in the period. $1, $2, $3 as above.
MONITORING = """
SELECT pt.home_centre_id AS centre_id, p.patient_id,
       bool_or(p.created_at >= $1 AND p.created_at < $2) AS enrolled,
       bool_or(EXISTS (SELECT 1 FROM monitoring_readings r
                       WHERE r.plan_id = p.id AND r.received_at >= $1
                         AND r.received_at < $2)) AS sent,
       bool_or(EXISTS (SELECT 1 FROM monitoring_alerts a
                       WHERE a.plan_id = p.id AND a.kind = 'out_of_range'
                         AND a.raised_at >= $1 AND a.raised_at < $2)) AS out_of_range,
       bool_or(EXISTS (SELECT 1 FROM monitoring_alerts a
                       WHERE a.plan_id = p.id AND a.kind = 'missed'
                         AND a.raised_at >= $1 AND a.raised_at < $2)) AS missed,
       bool_or(EXISTS (SELECT 1 FROM monitoring_alerts a
                       WHERE a.plan_id = p.id AND a.state = 'escalated'
                         AND a.raised_at >= $1 AND a.raised_at < $2)) AS escalated
FROM monitoring_plans p
JOIN patients pt ON pt.id = p.patient_id
WHERE p.starts_at < $2 AND coalesce(p.ended_at, p.ends_at) >= $1
  AND pt.home_centre_id = ANY($3::text[])
GROUP BY pt.home_centre_id, p.patient_id
"""

CENTRES = "SELECT id, name FROM centres ORDER BY name"
SERVICES = "SELECT code, name, sensitive FROM services ORDER BY sort_order, code"


async def facts(conn: asyncpg.Connection | asyncpg.Pool, period: Period,
                centres: tuple[str, ...]) -> list[BookingFacts]:
    start = local_midnight(period.first)
    end = local_midnight(period.last + timedelta(days=1))
    rows = await conn.fetch(FACTS, start, end, list(centres))
    return [BookingFacts(
        id=r["id"], centre_id=r["centre_id"], service_code=r["service_code"],
        sensitive=r["sensitive"], mode=r["mode"], month=r["month"], status=r["status"],
        patient_id=r["patient_id"], language=r["language"], new_patient=r["new_patient"],
        cancelled_by=r["cancelled_by"], created_at=r["created_at"], starts_at=r["starts_at"],
        video=r["video"], first_arrived_at=r["first_arrived_at"],
        admitted_at=r["admitted_at"], ended_at=r["ended_at"],
        nurse_present=r["nurse_present"], guest_joined=r["guest_joined"],
        staff_invited=r["staff_invited"], relayed=r["relayed"],
        sound_only=r["sound_only"]) for r in rows]


async def monitoring(conn: asyncpg.Connection | asyncpg.Pool, period: Period,
                     centres: tuple[str, ...]) -> list[MonitoringFacts]:
    start = local_midnight(period.first)
    end = local_midnight(period.last + timedelta(days=1))
    rows = await conn.fetch(MONITORING, start, end, list(centres))
    return [MonitoringFacts(
        centre_id=r["centre_id"], patient_id=r["patient_id"], enrolled=r["enrolled"],
        sent=r["sent"], out_of_range=r["out_of_range"], missed=r["missed"],
        escalated=r["escalated"]) for r in rows]


async def centre_names(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, str]:
    return {r["id"]: r["name"] for r in await conn.fetch(CENTRES)}


async def services(conn: asyncpg.Connection | asyncpg.Pool) -> list[tuple[str, str, bool]]:
    return [(r["code"], r["name"], r["sensitive"]) for r in await conn.fetch(SERVICES)]
