"""A patient with thousands of notes: the record page is read a page at a time, its audit row
stays small, every note is reachable by the page links, and the FHIR export still holds every
note with an audit trail of bounded rows (the record page answered 500 beyond ~600 notes: its
one audit row listed every note id and outgrew the log's 4 KiB limit)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from records.audit import MAX_DETAIL_BYTES
from records.service import RECORD_PAGE
from server.staff import Role
from tests.records.conftest import bulk_signed_notes, login_as

MANY = 5000
NOTE_RE = re.compile(r'<article class="card note" id="note-(\d+)"')
OLDER_RE = re.compile(r'href="(/patients/\d+/record\?before=\d+)"[^>]*data-older')
NEWER_RE = re.compile(r'href="(/patients/\d+/record\?after=\d+)"[^>]*data-newer')
# A page of the record must come back fast whatever the record's size.
PAGE_BUDGET_S = 2.0


async def _reads(conn: Any, patient: int, since: int) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        "SELECT action, detail::text AS detail FROM audit_log WHERE patient_id = $1 AND id > $2"
        " ORDER BY id", patient, since)
    return rows


async def _last_audit_id(conn: Any) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_log"))


@pytest.mark.serial  # a delay measured: alone, after the parallel run (Makefile)
async def test_a_record_of_5000_notes_is_paged_and_audited_in_bounded_rows(
        client, conn, rec, db_url, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id, started=True)
    t0 = time.perf_counter()
    ids = await bulk_signed_notes(conn, rec, booking_id=booking, patient_id=patient,
                                  author_id=gp.id, n=MANY)
    assert time.perf_counter() - t0 < 30
    newest_first = ids[::-1]
    await login_as(client, gp, db_url)

    # The first page: the newest notes, a link to older ones, no link to newer ones.
    mark = await _last_audit_id(conn)
    t0 = time.perf_counter()
    resp = await client.get(f"/patients/{patient}/record")
    took = time.perf_counter() - t0
    page = await resp.text()
    assert resp.status == 200, page[:500]
    assert took < PAGE_BUDGET_S, took
    shown = [int(x) for x in NOTE_RE.findall(page)]
    assert shown == newest_first[:RECORD_PAGE]
    assert f"bulk note {newest_first[0]}" in page
    assert not NEWER_RE.search(page)
    # One audit row, naming exactly the notes shown, far under the log's limit.
    rows = await _reads(conn, patient, mark)
    assert [r["action"] for r in rows] == ["read"]
    assert len(rows[0]["detail"]) <= MAX_DETAIL_BYTES
    assert json.loads(rows[0]["detail"])["note_ids"] == shown

    # Older, and older again: the next notes each time, newest first, none twice.
    seen = list(shown)
    pages = [page]
    for _ in range(3):
        older = OLDER_RE.search(pages[-1])
        assert older is not None
        resp = await client.get(older.group(1))
        assert resp.status == 200
        pages.append(await resp.text())
        seen += [int(x) for x in NOTE_RE.findall(pages[-1])]
    assert seen == newest_first[:4 * RECORD_PAGE]
    # And back: the newer link of the third page leads to the second page.
    newer = NEWER_RE.search(pages[2])
    assert newer is not None
    back = await (await client.get(newer.group(1))).text()
    assert NOTE_RE.findall(back) == NOTE_RE.findall(pages[1])
    # The last page: the oldest notes, and no link further back.
    last = await (await client.get(
        f"/patients/{patient}/record?before={newest_first[-RECORD_PAGE - 1]}")).text()
    assert [int(x) for x in NOTE_RE.findall(last)] == newest_first[-RECORD_PAGE:]
    assert not OLDER_RE.search(last) and NEWER_RE.search(last)
    # Every page was audited, each in one bounded row.
    details = [r["detail"] for r in await _reads(conn, patient, mark)]
    assert len(details) == len(pages) + 2
    assert max(len(d) for d in details) <= MAX_DETAIL_BYTES

    # The FHIR export is the whole record; its audit is several bounded rows naming every note.
    mark = await _last_audit_id(conn)
    resp = await client.get(f"/patients/{patient}/record.fhir.json")
    assert resp.status == 200
    bundle = json.loads(await resp.text())
    compositions = [e for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Composition"]
    assert len(compositions) == MANY
    rows = await _reads(conn, patient, mark)
    assert {r["action"] for r in rows} == {"export"}
    assert max(len(r["detail"]) for r in rows) <= MAX_DETAIL_BYTES
    exported = [i for r in rows for i in json.loads(r["detail"])["note_ids"]]
    assert sorted(exported) == sorted(ids)


async def test_a_cursor_of_another_patients_note_shows_nothing_of_theirs(
        client, conn, rec, db_url, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    mine, theirs = await make_patient("san-siro"), await make_patient("san-siro")
    b1 = await make_booking(mine, gp.id, started=True)
    b2 = await make_booking(theirs, gp.id, started=True)
    await bulk_signed_notes(conn, rec, booking_id=b1, patient_id=mine, author_id=gp.id, n=3)
    other = await bulk_signed_notes(conn, rec, booking_id=b2, patient_id=theirs,
                                    author_id=gp.id, n=3)
    await login_as(client, gp, db_url)
    for q in (f"before={other[-1]}", f"after={other[0]}"):
        resp = await client.get(f"/patients/{mine}/record?{q}")
        assert resp.status == 200
        assert NOTE_RE.findall(await resp.text()) == []
    resp = await client.get(f"/patients/{mine}/record?before=abc")
    assert resp.status == 422
