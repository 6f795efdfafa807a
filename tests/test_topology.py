"""Casa as docker-compose.yml runs it (tests/topology.py): Debian's PostgreSQL with password
authentication over TCP, the owner migrating and the least-privilege role serving, two
``casa serve`` behind nginx (TLS, round robin, WebSocket), coturn. Every process starts once
for the module."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import psutil
import pytest

from server.config import Config
from tests import topology
from tests.browser.conftest import (
    DOB,
    PHONE,
    WINDOW,
    Visit,
    Watched,
    book,
    sign_in,
    soon,
)
from tests.browser.test_call import LAPTOP, video_flows
from tests.conftest import PASSWORD
from tests.factories import Factories
from tests.topology import Topology, nginx_lines

SECRET_KEY = "topology-secret-key-" + "t" * 40
# The whole module's processes start and stop within this, on a busy two-core machine.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    t = topology.start(SECRET_KEY)
    try:
        yield t
    finally:
        t.close()


def insecure() -> ssl.SSLContext:
    """The proxy's certificate is self-signed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def outside_address() -> str:
    """A non-loopback address of this machine: a client from it is not "this machine" to Casa
    (which lets a loopback scraper read /metrics without the token)."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family.name == "AF_INET" and not a.address.startswith("127."):
                return str(a.address)
    raise AssertionError("this machine has no non-loopback IPv4 address to scrape from")


async def test_serving_role_has_least_privilege_over_tcp_with_passwords(topo: Topology) -> None:
    conn = await asyncpg.connect(topo.serving_url)
    try:
        assert await conn.fetchval("SELECT current_user") == "casa_app"
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SELECT host(inet_server_addr())") == "127.0.0.1"
        owner = await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                    "WHERE relname = 'audit_log'")
        assert owner == "casa_owner"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE audit_log")
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(topo.serving_url.replace(topo.values["CASA_DB_PASSWORD"], "wrong"))


async def test_round_robin_and_one_request_id_in_every_log(topo: Topology) -> None:
    ids = []
    async with aiohttp.ClientSession() as s:
        for _ in range(6):
            async with s.get(topo.origin + "/login", ssl=insecure()) as resp:
                assert resp.status == 200
                ids.append(resp.headers["X-Request-Id"])
    assert all(len(i) == 32 for i in ids)  # nginx's $request_id, adopted
    await asyncio.sleep(0)
    by_id = {line["request_id"]: line for line in nginx_lines(topo)}
    upstreams = [by_id[i]["upstream"] for i in ids]
    ports = {c.port: c for c in topo.instances}
    served = [ports[int(u.rsplit(":", 1)[1])] for u in upstreams]
    # Round robin, no stickiness: consecutive requests of one client alternate.
    assert all(a is not b for a, b in itertools.pairwise(served)), upstreams
    for rid, casa in zip(ids, served, strict=True):
        lines = [x for x in casa.lines() if x.get("request_id") == rid]
        assert lines and lines[0]["route"] == "/login" and lines[0]["status"] == 200
        other = next(c for c in topo.instances if c is not casa)
        assert not [x for x in other.lines() if x.get("request_id") == rid]


async def test_metrics_through_the_proxy_need_the_token(topo: Topology) -> None:
    source = outside_address()
    connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=insecure())
    async with aiohttp.ClientSession(connector=connector) as s:
        async with s.get(topo.origin + "/metrics") as resp:
            assert resp.status == 403
        token = topo.values["CASA_METRICS_TOKEN"]
        for _ in topo.instances:  # one scrape lands on each instance
            async with s.get(topo.origin + "/metrics",
                             headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
                assert "casa_http_requests_total" in await resp.text()


# -- a consultation through the proxy, and an instance killed in the middle of it ---------------

# The signalling engine keeps a place for 30 s and takes over the sockets of an instance silent
# for 5 s; the promise to patients: back in the call within 10 s.
RESUME_S = 10.0


async def staff_and_visit(topo: Topology) -> tuple[str, Visit]:
    """A GP and a home video consultation starting now, made through the real workflow in the
    topology's database (as the serving role, like the app)."""
    from server.auth import passwords
    from server.staff import Role

    f = Factories(topo.serving_url, passwords.hash_password(PASSWORD), secret_key=SECRET_KEY)
    try:
        gp = await f.staff(Role.GP, ("san-siro",), language="en")
    finally:
        await f.close()
    config = Config(secret_key=SECRET_KEY, data_dir=topo.work, database_url=topo.serving_url)
    booking_id, cid, room, link, code = await book(config, gp.id, soon())
    return gp.email, Visit(room, cid, booking_id, link, code, gp.email, gp.full_name,
                           "Maria Bianchi")


class Seen:
    """What one page received: HTTP statuses of 500 and above (and any refusal of a static
    file: a page without its script is broken too), and signalling frames with the time they
    arrived."""

    def __init__(self, w: Watched) -> None:
        self.failures: list[tuple[int, str]] = []
        self.frames: list[tuple[float, str]] = []
        w.page.on("response", self._response)
        w.page.on("websocket", self._socket)

    def _response(self, resp: Any) -> None:
        if resp.status >= 500 or (resp.status >= 400 and "/static/" in resp.url):
            self.failures.append((resp.status, resp.url))

    def _socket(self, ws: Any) -> None:
        ws.on("framereceived", lambda payload: self.frames.append(
            (time.monotonic(), payload if isinstance(payload, str) else "")))

    def first_after(self, since: float, kind: str) -> float | None:
        for at, text in self.frames:
            if at >= since and f'"type":"{kind}"' in text.replace(" ", ""):
                return at
        return None


async def watched(browser: Any, viewport: dict[str, int], locale: str) -> Watched:
    context = await browser.new_context(viewport=viewport, locale=locale,
                                        permissions=["camera", "microphone"],
                                        ignore_https_errors=True)  # the proxy's self-signed
    return Watched(await context.new_page())


async def socket_instance(topo: Topology, consultation_id: int, role: str) -> str | None:
    conn = await asyncpg.connect(topo.serving_url)
    try:
        found = await conn.fetchval(
            "SELECT instance_id FROM signaling_participants WHERE consultation_id = $1 "
            "AND role = $2 AND status <> 'left' ORDER BY last_seen_at DESC LIMIT 1",
            consultation_id, role)
        return str(found) if found else None
    finally:
        await conn.close()


async def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s} s")


async def test_call_through_the_proxy_survives_killing_the_patient_s_instance(
        topo: Topology, browser: Any) -> None:
    email, visit = await staff_and_visit(topo)
    by_instance = {c.instance_id(): c for c in topo.instances}
    assert None not in by_instance and len(by_instance) == 2
    patient = await watched(browser, PHONE, "it-IT")
    p_seen = Seen(patient)
    await patient.page.goto(f"{topo.origin}/join/{visit.link}")
    await patient.page.wait_for_url(f"**/consultation/{visit.room}")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    doc = await watched(browser, LAPTOP, "en-GB")
    d_seen = Seen(doc)
    await sign_in(doc, topo.origin, email)
    await doc.page.goto(topo.origin + "/dashboard")
    row = f".consultation[data-room='{visit.room}']"
    await doc.page.wait_for_selector(f"{row}[data-state=waiting]")
    await doc.page.click(f"{row} .admit")
    await doc.page.wait_for_selector("#stage-precall:not([hidden])")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await video_flows(patient)
    await video_flows(doc)

    # Round robin put the two sockets somewhere; the clinician reloads (straight back into the
    # call) until hers is on the other instance than the patient's (each reload's socket
    # lands on either, depending on the requests in between).
    p_inst = await wait_for(lambda: socket_instance(topo, visit.consultation_id, "patient"),
                            5, "the patient's socket")
    for _ in range(10):
        d_inst = await socket_instance(topo, visit.consultation_id, "clinician")
        if d_inst and d_inst != p_inst:
            break
        await doc.page.reload()
        await doc.page.wait_for_selector("#stage-call:not([hidden])")
    assert d_inst != p_inst and {p_inst, d_inst} == set(by_instance)

    # The clinician is typing a note when the patient's instance dies.
    await doc.page.wait_for_selector("#notes-panel textarea[name=reason]")
    await doc.page.type("#notes-panel textarea[name=reason]", "Controllo pressione", delay=20)
    killed = by_instance[p_inst]
    kill_at = time.monotonic()
    topo.kill(killed)
    await doc.page.type("#notes-panel textarea[name=reason]", " dopo la caduta", delay=20)

    # Both sides back in the call without a new admit: the patient's socket reconnects (to the
    # other instance through the proxy), gets its welcome straight into the call, and the
    # clinician sees her resumed.
    await wait_for(lambda: _async(p_seen.first_after(kill_at, "welcome")), RESUME_S,
                   "the patient's new welcome")
    back_at = p_seen.first_after(kill_at, "welcome")
    assert back_at is not None and back_at - kill_at < RESUME_S
    await patient.page.wait_for_selector("#stage-call:not([hidden])", timeout=1000)
    assert await patient.page.is_hidden("#stage-waiting")
    assert await socket_instance(topo, visit.consultation_id, "patient") == d_inst
    await video_flows(patient)
    await video_flows(doc)
    assert await doc.page.locator("#waiting-list li.waiting").count() == 0

    # The note typed across the kill is saved (the proxy sent the save to the live instance).
    await doc.page.wait_for_function(
        "() => document.querySelector('#notes-panel [data-save-state]').textContent"
        " === 'Draft saved'", timeout=15_000)
    resp = await doc.page.request.get(
        f"{topo.origin}/api/v1/records/consultations/{visit.booking_id}/notes")
    assert resp.status == 200
    assert "Controllo pressione dopo la caduta" in await resp.text()

    # No 5xx reached either browser.
    assert not p_seen.failures and not d_seen.failures, (p_seen.failures, d_seen.failures)
    patient.assert_clean(allow=("WebSocket",))
    doc.assert_clean(allow=("WebSocket",))
    print(f"patient back in the call {back_at - kill_at:.2f} s after the kill")
    topo.restart(killed)


async def _async(value: Any) -> Any:
    return value


# -- backup and the restore drill (docs/operations.md, "Backups") --------------------------------

async def a_signed_note(topo: Topology) -> str:
    """One signed note of a consultation, sealed under the topology's keyring and audited,
    written as the serving role. Returns its text."""
    from records import audit, content
    from records import keyring as keyrings
    from records.crypto import Envelope, RowId
    from server.auth import passwords
    from server.staff import Role

    f = Factories(topo.serving_url, passwords.hash_password(PASSWORD), secret_key=SECRET_KEY)
    try:
        gp = await f.staff(Role.GP, ("san-siro",))
        p = await f.patient(None, given="Lucia", family="Restore", born=DOB)
        b = await f.booking(p.id, gp.id, datetime.now(UTC) + soon(), service="gp_visit",
                            mode="home_video", window=WINDOW)
    finally:
        await f.close()
    text = f"restore drill note {b.id}"
    env = Envelope(keyrings.load(topo.keyring))
    conn = await asyncpg.connect(topo.serving_url)
    try:
        async with conn.transaction():
            note_id = await conn.fetchval(
                "INSERT INTO notes (booking_id, patient_id, category, author_id) "
                "VALUES ($1, $2, 'gp', $3) RETURNING id", b.id, p.id, gp.id)
            sealed = env.seal(content.parse({"text": text}).to_bytes(), RowId(note_id, 1, p.id))
            await conn.execute(
                "INSERT INTO note_versions (note_id, version, author_id, status, ciphertext, "
                "wrapped_key, kek_id, saved_at, signed_at) "
                "VALUES ($1, 1, $2, 'signed', $3, $4, $5, now(), now())",
                note_id, gp.id, sealed.ciphertext, sealed.wrapped_key, sealed.kek_id)
            await audit.append(conn, action="sign", actor_staff_id=gp.id, actor_kind="staff",
                               patient_id=p.id, booking_id=b.id,
                               detail={"note_id": note_id, "version": 1})
    finally:
        await conn.close()
    return text


async def test_backup_restores_into_an_empty_server(topo: Topology) -> None:
    await a_signed_note(topo)
    backup = topo.work / "backup"
    backup.mkdir()
    # 1. An anchor of the audit chain, kept apart from the database (Casa logs one every
    #    15 minutes too): a restore that lost the tail is found out.
    anchors = backup / "anchors.log"
    anchors.write_text(await asyncio.to_thread(topo.run_cli, "casa", "audit", "anchor"))
    # 2. The database, as its owner, in pg_dump's custom format.
    dump = backup / "casa.dump"
    db_env = topo.db_env()
    pg_env = {**os.environ, "PGPASSWORD": db_env["POSTGRES_PASSWORD"]}
    bindir = topology.pg_bin()
    await asyncio.to_thread(subprocess.run, [
        str(bindir / "pg_dump"), "-h", "127.0.0.1", "-p", str(topo.pg_port),
        "-U", db_env["POSTGRES_USER"], "-Fc", "-f", str(dump), db_env["POSTGRES_DB"]],
        env=pg_env, check=True, timeout=60)
    # 3. The keyring file, which the database never holds.
    shutil.copy(topo.keyring, backup / "keyring.json")

    # The drill: a new, empty server; the dump restored without its roles (they are the
    # cluster's), then `casa migrate` makes casa_owner and casa_app again and hands them the
    # restored tables; the keyring put back where CASA_KEYRING_FILE says.
    port = await asyncio.to_thread(topo.start_postgres, "restored")
    await asyncio.to_thread(subprocess.run, [
        str(bindir / "pg_restore"), "-h", "127.0.0.1", "-p", str(port),
        "-U", db_env["POSTGRES_USER"], "-d", db_env["POSTGRES_DB"], "--no-owner",
        "--no-privileges", "--exit-on-error", str(dump)], env=pg_env, check=True, timeout=60)
    restored_keyring = topo.keyring  # the drill restores over the same path
    shutil.copy(backup / "keyring.json", restored_keyring)
    migrated = await asyncio.to_thread(topo.run_cli, "migrate", "migrate", pg_port=port)
    assert "applied 0 migration(s)" in migrated
    verified = await asyncio.to_thread(topo.run_cli, "casa", "keys", "verify", pg_port=port)
    decrypted = re.search(r"(\d+) note version\(s\) decrypt", verified)
    assert decrypted and int(decrypted.group(1)) >= 1, verified
    assert "FAILED" not in verified
    audited = await asyncio.to_thread(topo.run_cli, "casa", "audit", "verify", "--anchors",
                                      str(anchors), pg_port=port)
    assert "anchor" in audited.lower()
    # Served from the restored server as casa_app, a role with no power there either.
    url = topo.serving_url.replace(f":{topo.pg_port}/", f":{port}/")
    conn = await asyncpg.connect(url)
    try:
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        owner = await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                    "WHERE relname = 'note_versions'")
        assert owner == "casa_owner"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
    finally:
        await conn.close()
