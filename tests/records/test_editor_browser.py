"""The note editor in a real browser: autosave via fetch with the CSRF header, then sign."""

from __future__ import annotations

import asyncio
from typing import Any

from server.staff import Role
from tests.conftest import PASSWORD


async def sign_in_page(page: Any, base: str, email: str) -> None:
    """Sign in on a plain Playwright page (the records tests' own, not a Watched one)."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/home")


async def test_autosave_then_sign_in_the_browser(client, browser, conn, make_staff,
                                                 make_patient, make_booking):
    nurse = await make_staff(Role.NURSE, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, nurse.id, "nurse_visit")
    page = await browser.new_page()
    page.set_default_timeout(10_000)
    base = str(client.make_url("")).rstrip("/")
    await sign_in_page(page, base, nurse.email)
    await page.goto(f"{base}/consultations/{booking}/notes")
    await page.fill("#note-reason", "Kiosk check")
    await page.fill("#m-heart_rate", "71")
    await page.wait_for_selector("[data-save-state]:has-text('Draft saved')")
    note = await conn.fetchrow("SELECT id, category::text AS c FROM notes WHERE booking_id = $1",
                               booking)
    assert note is not None and note["c"] == "nurse"
    # An implausible value is refused and explained; nothing is lost from the draft.
    await page.fill("#m-heart_rate", "710")
    await page.click("[data-save]")
    await page.wait_for_selector("[data-save-error]:not([hidden])")
    await page.fill("#m-heart_rate", "72")
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("[data-sign]")
    for _ in range(100):
        if await conn.fetchval("SELECT status FROM note_versions WHERE note_id = $1",
                               note["id"]) == "signed":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("note was not signed")
    await page.wait_for_selector("[data-amend-form]")
    await page.close()


async def test_editor_in_the_call_page_panel_signs_without_leaving_the_page(
        aiohttp_client, config, browser, conn, make_staff, make_patient, make_booking):
    from aiohttp import web

    from server import app as app_module

    app = app_module.create_app(config)

    async def call_page(request):
        # Stands in for the call page (owned by the calls package): its empty notes panel.
        return web.Response(content_type="text/html", text=(
            '<!doctype html><html><head><meta name="csrf-token" content="'
            + request.query.get("csrf", "") + '"></head><body>'
            '<section id="notes-panel" data-consultation-id="' + request.query["c"] + '">'
            '</section><script type="module" src="/static/js/notes.js"></script>'
            '</body></html>'))

    app.router.add_get("/test-call", call_page)
    client = await aiohttp_client(app)
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    consultation = await conn.fetchval("SELECT id FROM consultations WHERE booking_id = $1",
                                       booking)
    page = await browser.new_page()
    page.set_default_timeout(10_000)
    base = str(client.make_url("")).rstrip("/")
    await sign_in_page(page, base, gp.email)
    csrf = await page.get_attribute('meta[name="csrf-token"]', "content")
    await page.goto(f"{base}/test-call?c={consultation}&csrf={csrf}")
    await page.wait_for_selector("#notes-panel [data-notes-editor]")
    await page.fill("#note-plan", "Review in a week")
    await page.click("[data-save]")
    await page.wait_for_selector("[data-save-state]:has-text('Draft saved')")
    await page.evaluate("window.__stillHere = true")
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("[data-sign]")
    await page.wait_for_selector("#notes-panel [data-amend-form]")
    assert await page.evaluate("window.__stillHere === true")  # no reload: the call goes on
    assert await conn.fetchval("SELECT status FROM note_versions nv JOIN notes n "
                               "ON n.id = nv.note_id WHERE n.booking_id = $1", booking) == "signed"
    await page.close()


async def _signed_in_editor(client: Any, browser: Any, make_staff: Any, make_patient: Any,
                            make_booking: Any) -> tuple[Any, Any, int]:
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(15_000)
    base = str(client.make_url("")).rstrip("/")
    await sign_in_page(page, base, gp.email)
    await page.goto(f"{base}/consultations/{booking}/notes")
    return context, page, booking


async def _draft_plan(client: Any, page: Any, booking: int, conn: Any) -> str:
    note_id = await conn.fetchval("SELECT id FROM notes WHERE booking_id = $1", booking)
    if note_id is None:
        return ""
    body = await page.evaluate(
        "async (id) => (await fetch(`/api/v1/records/notes/${id}`)).json()", note_id)
    return str(body["versions"][-1]["content"]["plan"])


async def test_a_dropped_connection_loses_nothing_and_saves_when_it_returns(
        client, browser, conn, make_staff, make_patient, make_booking):
    context, page, booking = await _signed_in_editor(client, browser, make_staff, make_patient,
                                                     make_booking)
    await context.set_offline(True)
    await page.fill("#note-plan", "Written while offline")
    await page.wait_for_selector("[data-save-error]:has-text('will be saved as soon as')")
    assert await page.input_value("#note-plan") == "Written while offline"
    assert await conn.fetchval("SELECT count(*) FROM notes WHERE booking_id = $1", booking) == 0
    await context.set_offline(False)
    # The editor tries again by itself (2 s, then 4 s...): no typing, no click.
    await page.wait_for_selector("[data-save-state]:has-text('Draft saved')", timeout=30_000)
    assert await page.is_hidden("[data-save-error]")
    assert await _draft_plan(client, page, booking, conn) == "Written while offline"
    await context.close()


async def test_a_503_is_retried_and_leaving_with_unsaved_text_warns(
        client, browser, conn, make_staff, make_patient, make_booking):
    context, page, booking = await _signed_in_editor(client, browser, make_staff, make_patient,
                                                     make_booking)
    refused = []

    async def unavailable(route):
        refused.append(route.request.method)
        if route.request.method == "POST":
            # The worst case: the note is created, but the answer is lost on the way back.
            await route.fetch()
        await route.fulfill(status=503, content_type="application/json", body=(
            '{"error": {"code": "database_unavailable", "message": "try again"}}'))

    # A proxy or a database outage answering 503: the editor keeps the text and retries.
    await page.route("**/api/v1/records/**", unavailable)
    await page.fill("#note-plan", "Kept through a 503")
    await page.wait_for_selector("[data-save-error]:has-text('will be saved as soon as')")
    for _ in range(100):  # the first retry comes about 2 s later
        if len(refused) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(refused) >= 2, refused
    # Leaving now would lose the text: the browser is asked to warn.
    dialogs = []

    async def on_dialog(dialog):
        dialogs.append(dialog.type)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await page.close(run_before_unload=True)
    for _ in range(100):
        if dialogs:
            break
        await asyncio.sleep(0.1)
    assert dialogs == ["beforeunload"]
    # Still on the page, the text still there; once the service is back it is saved.
    await page.unroute("**/api/v1/records/**")
    await page.wait_for_selector("[data-save-state]:has-text('Draft saved')", timeout=40_000)
    assert await _draft_plan(client, page, booking, conn) == "Kept through a 503"
    # The retries found the note the lost answer had created instead of making another.
    assert await conn.fetchval("SELECT count(*) FROM notes WHERE booking_id = $1", booking) == 1
    await context.close()
