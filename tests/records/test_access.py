"""The access rules as a matrix: every role x every operation x own and other patients, on
ordinary (GP) and restricted (psychological) notes, through the records layer on a real
database."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from records import access, content
from records.access import Category, Facts, Op
from records.errors import Denied, NoteStateError
from server.staff import Role
from tests.records.conftest import set_status_as

ROLES = list(Role)
CREATE_CATEGORY = {Role.GP: Category.GP, Role.NURSE: Category.NURSE,
                   Role.PSYCHOLOGIST: Category.PSYCHOLOGICAL, Role.COORDINATOR: Category.GP,
                   Role.ADMIN: Category.GP}


async def _try(conn: Any, coro: Any) -> bool:
    tr = conn.transaction()
    await tr.start()
    try:
        await coro
    except Denied:
        await tr.rollback()
        return False
    except NoteStateError:
        pass  # the rules allowed it; the note's state (signed) did not
    await tr.rollback()  # leave the fixtures as they were for the next operation
    return True


async def _outcomes(conn: Any, rec: Any, user: Any, note: Any, patient: int,
                    share_to: int) -> set[str]:
    booking = note.booking_id  # the patient's consultation, written by the author
    ok: set[str] = set()
    checks = {
        "read": rec.read(conn, user, note.id),
        "create": rec.create(conn, user, booking_id=booking, patient_id=patient,
                             category=CREATE_CATEGORY[user.role], content=content.parse({})),
        "edit": rec.save_draft(conn, user, note.id, content.parse({"text": "changed"})),
        "share": rec.share(conn, user, note.id, share_to),
        "break_glass": rec.break_glass(conn, user, note.id, "patient unconscious in ER"),
        "summary_link": rec.summary_link(conn, user, note.id),
        "export": rec.export(conn, user, patient, "fhir"),
        "erase": rec.erase_note(conn, user, note.id, "patient_request"),
    }
    for name, coro in checks.items():
        if await _try(conn, coro):
            ok.add(name)
    if access.allowed(user.role, Op.AUDIT_SEARCH, None, Facts()):
        ok.add("audit_search")
    return ok


@pytest.fixture
async def world(conn, rec, make_staff, make_patient, make_booking):
    gp_author = await make_staff(Role.GP, ("san-siro", "mazzini"))
    psy_author = await make_staff(Role.PSYCHOLOGIST, ("san-siro", "mazzini"))
    own, other = await make_patient("san-siro"), await make_patient("mazzini")
    notes = {}
    for pid, kind in itertools.product((own, other), ("ordinary", "restricted")):
        author, cat, service = ((gp_author, Category.GP, "gp_visit") if kind == "ordinary"
                                else (psy_author, Category.PSYCHOLOGICAL, "psych_session"))
        booking = await make_booking(pid, author.id, service)  # each author's own session
        n = await rec.create(conn, author, booking_id=booking, patient_id=pid, category=cat,
                             content=content.parse({"text": f"{kind} {pid}"}))
        await rec.sign(conn, author, n.id)
        notes[(pid, kind)] = n
    colleague = await make_staff(Role.GP, ("gratosoglio",))
    return {"own": own, "other": other, "notes": notes, "colleague": colleague.id}


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
async def test_matrix_for_a_colleague_who_is_not_the_author(conn, rec, make_staff, world, role):
    user = await make_staff(role, ("san-siro",))
    clinical = role.clinical
    for where, kind in itertools.product(("own", "other"), ("ordinary", "restricted")):
        patient = world[where]
        got = await _outcomes(conn, rec, user, world["notes"][(patient, kind)], patient,
                              world["colleague"])
        expected: set[str] = set()
        if role is Role.ADMIN:
            expected = {"erase", "audit_search"}
        elif clinical and where == "own":
            # Caring (same centre) but not on the author's consultation: writes nothing there.
            expected = {"export"}
            if kind == "ordinary" and role in (Role.GP, Role.NURSE):
                expected.add("read")
            if kind == "restricted":
                expected.add("break_glass")
        assert got == expected, (role.value, where, kind)


async def test_the_author_may_do_everything_but_erase(conn, rec, world):
    from server import staff as staff_store

    for (patient, _kind), note in world["notes"].items():
        author = await staff_store.get(conn, note.author_id)
        got = await _outcomes(conn, rec, author, note, patient, world["colleague"])
        expected = {"read", "create", "edit", "summary_link", "export"}
        if note.category.restricted:
            expected.add("share")
        assert got == expected, (note.category, patient)


async def test_sharing_opens_a_restricted_note_to_that_clinician_only(conn, rec, make_staff,
                                                                    world):
    from server import staff as staff_store

    note = world["notes"][(world["own"], "restricted")]
    author = await staff_store.get(conn, note.author_id)
    gp, nurse = await make_staff(Role.GP), await make_staff(Role.NURSE)
    coordinator = await make_staff(Role.COORDINATOR)
    await rec.share(conn, author, note.id, gp.id)
    assert (await rec.read(conn, gp, note.id)).versions[0].content.text.startswith("restricted")
    with pytest.raises(Denied):
        await rec.read(conn, nurse, note.id)
    with pytest.raises(Denied):
        await rec.share(conn, author, note.id, coordinator.id)  # never to non-clinicians
    with pytest.raises(Denied):
        await rec.share(conn, gp, note.id, nurse.id)  # only the author shares


def test_policy_function_never_gives_clinical_content_to_non_clinicians():
    for role, op, cat in itertools.product(ROLES, Op, [None, *Category]):
        for facts in itertools.starmap(Facts, itertools.product((False, True), repeat=5)):
            verdict = access.allowed(role, op, cat, facts)
            if role in (Role.COORDINATOR, Role.ADMIN) and op not in (Op.AUDIT_SEARCH,
                                                                    Op.ERASE):
                assert not verdict
            if op in (Op.AUDIT_SEARCH, Op.ERASE):
                assert verdict == (role is Role.ADMIN)
            if op is Op.READ and cat is not None and cat.restricted and verdict:
                assert facts.author or facts.shared or facts.glass
            if op is Op.CREATE and verdict:
                assert facts.caring and facts.on_booking


async def test_a_checked_in_booking_makes_a_carer_until_entered_in_error(
        conn, rec, make_staff, make_patient, make_booking):
    author = await make_staff(Role.GP, ("mazzini",))
    visiting = await make_staff(Role.GP, ("gratosoglio",))  # not the patient's centre
    patient = await make_patient("mazzini")
    note = await rec.create(conn, author, booking_id=await make_booking(patient, author.id),
                            patient_id=patient, category=Category.GP,
                            content=content.parse({"text": "x"}))
    await rec.sign(conn, author, note.id)
    with pytest.raises(Denied):
        await rec.read(conn, visiting, note.id)
    await make_booking(patient, visiting.id)  # a future booking: not yet caring
    with pytest.raises(Denied):
        await rec.read(conn, visiting, note.id)
    booking = await make_booking(patient, visiting.id, started=True)
    assert (await rec.read(conn, visiting, note.id)).readable
    await set_status_as(conn, booking, "entered-in-error", None)
    with pytest.raises(Denied):
        await rec.read(conn, visiting, note.id)


async def test_drafts_are_the_authors_until_signed(conn, rec, make_staff, make_patient,
                                                   make_booking):
    author = await make_staff(Role.GP, ("san-siro",))
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    patient = await make_patient("san-siro")
    note = await rec.create(conn, author, booking_id=await make_booking(patient, author.id),
                            patient_id=patient, category=Category.GP,
                            content=content.parse({"text": "first thoughts"}))
    with pytest.raises(Denied):
        await rec.read(conn, nurse, note.id)
    assert await rec.history(conn, nurse, patient) == []
    await rec.sign(conn, author, note.id)
    await rec.amend(conn, author, note.id, "typo")
    view = await rec.read(conn, nurse, note.id)
    assert [v.version for v in view.versions] == [1]  # the open amendment is not shown
    assert [v.version for v in (await rec.read(conn, author, note.id)).versions] == [1, 2]
