"""The activity report on a seeded November: every figure against one worked out here from the
seed, suppression included; the page, its downloads (CSV, XLSX opened with openpyxl) and the
API (JSON, CSV) under each role's access."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import openpyxl

from server.bookings import tokens
from server.reports.schemas import ActivityReport
from server.reports.suppression import Mark, suppress
from server.staff import Role
from tests.conftest import csrf_token
from tests.records.conftest import login_as
from tests.reports.conftest import LANGUAGES, QUERY, RETURNING, Spec

ACTIVITY = ("bookings", "attended", "no_shows", "cancelled_patient", "cancelled_staff",
            "cancelled_system", "patients", "new_patients", "returning_patients")
CALL_COUNTS = ("video_attended", "kiosk_attended", "nurse_present", "guest_joined",
               "staff_invited", "relayed", "sound_only")
SHOWN = {Mark.SHOWN: None, Mark.PRIMARY: "<5", Mark.SECONDARY: "x"}


def expected_counts(specs: Iterable[Spec]) -> dict[str, int]:
    """The seed's own account of a group, one figure at a time."""
    ss = list(specs)
    came = [s for s in ss if s.outcome == "attended"]
    reached = {s.patient for s in came}
    video = [s for s in came if s.mode != "in_person"]
    kiosk = [s for s in video if s.mode == "kiosk_video"]
    return {
        "bookings": len(ss), "attended": len(came),
        "no_shows": len([s for s in ss if s.outcome == "noshow"]),
        "cancelled_patient": 0,
        "cancelled_staff": len([s for s in ss if s.outcome == "cancelled"]),
        "cancelled_system": 0,
        "patients": len(reached),
        "new_patients": len(reached - set(RETURNING)),
        "returning_patients": len(reached & set(RETURNING)),
        "video_attended": len(video), "kiosk_attended": len(kiosk),
        "nurse_present": len([s for s in kiosk if s.nurse]),
        "guest_joined": len([s for s in video if s.guest]),
        "staff_invited": len([s for s in video if s.invited]),
        "relayed": len([s for s in video if s.relay]),
        "sound_only": len([s for s in video if s.sound_only]),
    }


def published(groups: list[list[Spec]], columns: tuple[str, ...]) -> list[list[str]]:
    """What the table must show: the seed's counts, then the suppression rule applied."""
    grid = [[expected_counts(g)[c] for c in columns] for g in groups]
    marks = suppress(grid)
    return [[SHOWN[m] or str(v) for v, m in zip(row, ms, strict=True)]
            for row, ms in zip(grid, marks, strict=True)]


def table_of(report: dict[str, Any], key: str) -> dict[str, Any]:
    return next(t for t in report["tables"] if t["key"] == key)


def shown(table: dict[str, Any], columns: tuple[str, ...]) -> list[list[str]]:
    idx = [table["columns"].index(c) for c in columns]
    return [[r["cells"][i]["shown"] for i in idx] for r in table["rows"]]


def split(specs: list[Spec], keys: list[str], key: Callable[[Spec], str]) -> list[list[Spec]]:
    return [[s for s in specs if key(s) == k] for k in keys] + [specs]


def median_text(values: list[float]) -> str:
    return f"{round(statistics.median(values), 1):.1f}" if len(values) >= 5 else "<5"


async def bearer(conn: Any, staff_id: int) -> dict[str, str]:
    _, token = await tokens.create(conn, staff_id)
    return {"Authorization": f"Bearer {token}"}


async def test_figures_at_one_centre_match_the_seed_with_suppression(client, seed, conn):
    await login_as(client, seed.coordinator, "")
    resp = await client.get(f"/api/v1/reports/activity?{QUERY}",
                            headers={"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    # The answer is what the OpenAPI document says it is.
    msgspec.json.decode(await resp.read(), type=ActivityReport)
    report = await resp.json()
    assert report["centres"] == ["san-siro"]
    assert report["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    mine = [s for s in seed.specs if s.centre == "san-siro"]

    # By mode, by service (the sensitive ones on one line), by month: counts and suppression.
    modes = ["home_video", "kiosk_video", "in_person"]
    t = table_of(report, "mode.activity")
    assert [r["key"] for r in t["rows"]] == [*modes, "total"]
    assert shown(t, ACTIVITY) == published(split(mine, modes, lambda s: s.mode), ACTIVITY)
    t = table_of(report, "mode.calls")
    assert shown(t, CALL_COUNTS) == published(split(mine, modes, lambda s: s.mode),
                                              CALL_COUNTS)
    services = ["gp_visit", "nurse_visit", "vaccination", "sensitive"]
    t = table_of(report, "service.activity")
    assert [r["key"] for r in t["rows"]] == [*services, "total"]
    by_service = split(mine, services,
                       lambda s: "sensitive" if s.sensitive else s.service)
    assert shown(t, ACTIVITY) == published(by_service, ACTIVITY)
    t = table_of(report, "month.activity")
    assert [r["key"] for r in t["rows"]] == ["2026-11", "total"]

    # Worked by hand once: the in-person line. 4 bookings, 4 came, 4 patients, 1 new, 3
    # returning: all under five; its zeros are shown.
    row = next(r for r in table_of(report, "mode.activity")["rows"] if r["key"] == "in_person")
    assert [c["shown"] for c in row["cells"]] == ["<5", "<5", "0", "0", "0", "0", "<5", "<5",
                                                  "<5"]
    assert all(c["value"] is None for c in row["cells"] if c["shown"] == "<5")
    # And its complement, by hand: in the bookings column (17, 6, 4, total 27) the 4 alone
    # would be 27 - 17 - 6, so the next smallest, the kiosk's 6, is withheld with it ("x").
    # The totals' 3 no-shows and 2 cancellations are withheld like any small count.
    t = table_of(report, "mode.activity")
    assert [r["cells"][0]["shown"] for r in t["rows"]] == ["17", "x", "<5", "27"]
    assert t["rows"][1]["cells"][0]["suppressed"] == "secondary"
    total = t["rows"][-1]
    assert total["cells"][ACTIVITY.index("no_shows")]["shown"] == "<5"
    assert total["cells"][ACTIVITY.index("cancelled_staff")]["shown"] == "<5"

    # Medians: days from booking, waiting room, consultation, from the seed's own numbers.
    t = table_of(report, "mode.calls")
    home = [s for s in mine if s.mode == "home_video"]
    row = dict(zip(t["columns"], t["rows"][0]["cells"], strict=True))
    leads = [s.lead_days for s in home if s.outcome != "cancelled"]
    assert row["lead_median_days"]["shown"] == median_text(leads)
    p90 = statistics.quantiles(leads, n=10, method="inclusive")[8]
    assert row["lead_p90_days"]["shown"] == f"{round(p90, 1):.1f}"
    waits = [s.wait_min for s in home if s.wait_min is not None]
    assert row["wait_median_min"]["shown"] == median_text([w for w in waits if w is not None])
    calls = [s.call_min for s in home if s.call_min is not None]
    assert row["duration_median_min"]["shown"] == median_text([c for c in calls
                                                               if c is not None])
    # By hand: six home calls relayed (shown), two fell back to sound only (withheld); a
    # report of the clinician's saying neither is not counted.
    assert (row["relayed"]["shown"], row["sound_only"]["shown"]) == ("6", "<5")
    assert "Share of calls" not in " ".join(report["not_recorded"])
    # In person: no consultation times are recorded.
    in_person = dict(zip(t["columns"], t["rows"][2]["cells"], strict=True))
    assert in_person["wait_median_min"]["shown"] == "–"

    # Languages: patients who came to a service that is not sensitive, by their language;
    # the Spanish speakers came only to sensitive services and are nowhere in it.
    t = table_of(report, "language.patients")
    came = {s.patient for s in mine if s.outcome == "attended" and not s.sensitive}
    counts: dict[str, int] = {}
    for p in came:
        counts[LANGUAGES[p]] = counts.get(LANGUAGES[p], 0) + 1
    assert counts == {"it": 10, "ar": 4, "uk": 1}
    assert [(r["key"], r["cells"][0]["shown"]) for r in t["rows"]] == [
        ("it", "10"), ("ar", "<5"), ("uk", "<5"), ("total", "15")]


async def test_sensitive_services_are_never_named_or_split(client, seed):
    await login_as(client, seed.coordinator, "")
    body = await (await client.get(f"/api/v1/reports/activity?{QUERY}&format=csv")).text()
    for code in ("psych_session", "psychiatric_followup", "violence_support"):
        assert code not in body
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["row_key"] for r in rows if r["table"] == "service.activity"} == {
        "gp_visit", "nurse_visit", "vaccination", "sensitive", "total"}
    assert "es" not in {r["row_key"] for r in rows if r["table"] == "language.patients"}


async def test_admin_sees_every_centre_and_the_second_centre_adds_up(client, seed, conn,
                                                                     db_url):
    headers = await bearer(conn, seed.admin.id)
    resp = await client.get(f"/api/v1/reports/activity?{QUERY}", headers=headers)
    assert resp.status == 200
    report = await resp.json()
    assert set(report["centres"]) >= {"san-siro", "gratosoglio"}
    t = table_of(report, "centre.activity")
    keys = [r["key"] for r in t["rows"]][:-1]
    assert shown(t, ACTIVITY) == published(split(seed.specs, keys, lambda s: s.centre),
                                           ACTIVITY)
    row = next(r for r in t["rows"] if r["key"] == "gratosoglio")
    assert [c["shown"] for c in row["cells"]][:2] == ["6", "6"]
    # The page too (after the admin's second factor), with every centre to choose from.
    await login_as(client, seed.admin, db_url)
    html = await (await client.get(f"/reports/activity?{QUERY}")).text()
    assert '<option value="gratosoglio"' in html and '<option value="san-siro"' in html
    assert 'data-row="gratosoglio"' in html
    assert 'href="/reports/activity"' in await (await client.get("/home")).text()


async def test_a_coordinator_of_another_centre_sees_nothing_of_this_one(client, seed, conn):
    headers = await bearer(conn, seed.other_coordinator.id)
    resp = await client.get(f"/api/v1/reports/activity?{QUERY}", headers=headers)
    report = await resp.json()
    assert report["centres"] == ["gratosoglio"]
    assert "san-siro" not in await (await client.get(
        f"/api/v1/reports/activity?{QUERY}&format=csv", headers=headers)).text()
    refused = await client.get(f"/api/v1/reports/activity?{QUERY}&centre=san-siro",
                               headers=headers)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"


async def test_clinicians_are_refused_page_and_api(client, seed, conn):
    for user in (seed.gp, seed.psychologist, seed.nurse):
        headers = await bearer(conn, user.id)
        resp = await client.get(f"/api/v1/reports/activity?{QUERY}", headers=headers)
        assert resp.status == 403
    await login_as(client, seed.gp, "")
    page = await client.get("/reports/activity")
    assert page.status == 403
    assert "data-table" not in await page.text()
    assert (await client.get("/reports/activity.xlsx")).status == 403
    anonymous = await client.get(f"/api/v1/reports/activity?{QUERY}", headers={
        "Authorization": "Bearer nope"})
    assert anonymous.status == 401


async def test_the_page_shows_charts_tables_and_links(client, seed):
    await login_as(client, seed.coordinator, "")
    home = await (await client.get("/home")).text()
    assert 'href="/reports/activity"' in home
    resp = await client.get(f"/reports/activity?{QUERY}&centre=")
    assert resp.status == 200
    html = await resp.text()
    assert html.count('<figure class="chart"') == 5
    assert '<rect class="bar-fill"' in html
    assert 'data-table="service.activity"' in html
    assert "Psychological session" not in html
    assert "style=" not in html  # the CSP allows no style attribute
    assert 'href="/reports/activity.csv?from=2026-11-01&amp;to=2026-11-30"' in html
    # In Italian once the coordinator chooses it.
    token = await csrf_token(client, "/reports/activity")
    await client.post("/language", data={"lang": "it", "csrf_token": token,
                                         "next": "/reports/activity"})
    html = await (await client.get(f"/reports/activity?{QUERY}")).text()
    assert 'lang="it"' in html
    assert "Rapporto di attività" in html and "Pazienti raggiunti per lingua" in html


async def test_csv_and_xlsx_downloads_hold_the_published_cells(client, seed):
    await login_as(client, seed.coordinator, "")
    resp = await client.get(f"/reports/activity.csv?{QUERY}")
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    cell = {(r["table"], r["row_key"], r["column_key"]): r["value"] for r in rows}
    assert cell[("mode.activity", "in_person", "bookings")] == "<5"
    assert cell[("mode.activity", "kiosk_video", "bookings")] == "x"
    assert cell[("mode.activity", "home_video", "bookings")] == "17"
    api = await (await client.get(f"/api/v1/reports/activity?{QUERY}&format=csv")).text()
    assert api == await resp.text()

    resp = await client.get(f"/reports/activity.xlsx?{QUERY}")
    assert resp.status == 200
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    assert wb.sheetnames[0] == "Report"
    ws = wb["mode activity"]
    values = {r[0]: r[1:] for r in ws.iter_rows(min_row=3, values_only=True)}
    assert values["Video from home"][0] == 17
    assert values["Video at the centre kiosk"][0] == "x"
    assert values["In person"][0] == "<5"
    assert values["Total"][0] == len([s for s in seed.specs if s.centre == "san-siro"])
    about = [r[0] for r in wb["Report"].iter_rows(values_only=True)]
    assert "Not recorded yet" in about


async def test_a_bad_period_or_format_is_refused_with_its_field(client, make_staff, conn):
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    headers = await bearer(conn, coordinator.id)
    for query, field in [("from=2026-11-30&to=2026-11-01", "to"),
                         ("from=1999-12-31&to=2000-01-05", "from"),
                         ("from=2024-01-01&to=2026-01-01", "to"),
                         ("from=2026-13-01", "from"), ("format=xml", "format"),
                         ("centre=", "centre")]:
        resp = await client.get(f"/api/v1/reports/activity?{query}", headers=headers)
        assert resp.status == 422, (query, await resp.text())
        assert field in (await resp.json())["error"]["details"]["fields"], query
    # The page takes an empty field as "the default".
    await login_as(client, coordinator, "")
    assert (await client.get("/reports/activity?from=&to=&centre=")).status == 200
    assert (await client.get("/reports/activity?from=2026-11-30&to=2026-11-01")).status == 422


async def test_the_operation_is_in_the_openapi_document(client):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    op = doc["paths"]["/reports/activity"]["get"]
    assert op["operationId"] == "getActivityReport"
    assert {p["name"] for p in op["parameters"]} == {"from", "to", "centre", "format"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ActivityReport")
    assert {"401", "403"} <= set(op["responses"])
