"""A clinician's notes still waiting to be signed.

A note left as a draft after the call counts for nothing clinically until its author signs it,
and nothing else reminds them: the home page, the dashboard, the inbox and the call's end page
list these. Only the author may edit or sign a note (``records.access``: ``Op.EDIT``), so the
list is the signed-in clinician's own drafts and never anyone else's. It is made of metadata
alone (which note, which patient, when last saved): nothing is decrypted to make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from records.access import Category, Facts, Op, allowed
from server.staff import Staff

# Erased notes and erased versions are gone: nothing is left to sign.
UNSIGNED = """
SELECT n.id AS note_id, n.booking_id, n.patient_id, n.category::text AS category,
       v.amends_version IS NOT NULL AS amendment, v.saved_at,
       p.given_name || ' ' || p.family_name AS patient_name
FROM notes n
JOIN note_versions v ON v.note_id = n.id AND v.status = 'draft'
JOIN patients p ON p.id = n.patient_id
WHERE n.author_id = $1 AND v.author_id = $1 AND n.erased_at IS NULL AND v.erased_at IS NULL
  AND ($2::bigint IS NULL OR n.booking_id = $2)
ORDER BY v.saved_at, n.id
"""


@dataclass(frozen=True)
class Draft:
    note_id: int
    booking_id: int
    patient_id: int
    patient_name: str
    category: Category
    amendment: bool  # an amendment of a signed note, rather than a note never signed
    saved_at: datetime

    @property
    def editor(self) -> str:
        return editor_of(self.booking_id)


def editor_of(booking_id: int) -> str:
    """Where a consultation's notes are written and signed."""
    return f"/consultations/{booking_id}/notes"


async def unsigned(conn: asyncpg.Connection | asyncpg.Pool, user: Staff,
                   booking_id: int | None = None) -> list[Draft]:
    """``user``'s own unsigned drafts, oldest first (those of one booking when given)."""
    if not user.role.clinical:
        return []
    rows = await conn.fetch(UNSIGNED, user.id, booking_id)
    drafts = [Draft(r["note_id"], r["booking_id"], r["patient_id"], r["patient_name"],
                    Category(r["category"]), r["amendment"], r["saved_at"]) for r in rows]
    # The author's own right to edit, asked of the one policy rather than assumed here.
    return [d for d in drafts if allowed(user.role, Op.EDIT, d.category, Facts(author=True))]
