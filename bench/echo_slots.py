"""How long a patient's pre-call check waits for an echo peer while others hold offers that
never connect (real aiortc offers whose candidates point at 192.0.2.1, which nobody answers
from), against a ``casa serve`` process.

(a) four people at four addresses, one stuck offer each (every slot of the instance);
(b) one link posting eight stuck offers from one address.
Each prints how long a fifth patient, at another address, polling every 0.25 s, waited for an
accepted offer (given up after ``--within`` seconds).

    python -m bench.echo_slots [--within 90]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from bench.signaling_load import Server
from bench.signaling_seed import make_visit
from server import centres, db, dbroles
from server import staff as staff_store
from server.auth import passwords
from server.staff import Role

POLL_S = 0.25


async def unreachable_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return re.sub(r"(a=candidate:\S+ \d \S+ \d+ )\S+", r"\g<1>192.0.2.1", sdp)


async def post(session: aiohttp.ClientSession, url: str, sdp: str, token: str,
               address: str) -> tuple[int, str]:
    async with session.post(url, json={"sdp": sdp, "type": "offer"},
                            headers={"Authorization": f"Bearer {token}",
                                     "X-Forwarded-For": address}) as r:
        body = await r.json()
        return r.status, body["error"]["code"] if r.status != 200 else "ok"


async def wait_for_slot(session: aiohttp.ClientSession, url: str, sdp: str, token: str,
                        within: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < within:
        status, _ = await post(session, url, sdp, token, "203.0.113.7")
        if status == 200:
            return time.monotonic() - started
        await asyncio.sleep(POLL_S)
    return None


def said(waited: float | None, within: float) -> str:
    return f"{waited:.1f} s" if waited is not None else f"still refused after {within:.0f} s"


async def stuck_people(session: aiohttp.ClientSession, url: str, sdp: str, tokens: list[str],
                       within: float) -> str:
    held = [await post(session, url, sdp, tokens[n], f"198.51.100.{n + 1}") for n in range(4)]
    waited = await wait_for_slot(session, url, sdp, tokens[4], within)
    return (f"(a) 4 stuck offers from 4 people at 4 addresses: statuses {[s for s, _ in held]}; "
            f"a fifth patient's check waited {said(waited, within)}")


async def hoarder(session: aiohttp.ClientSession, url: str, sdp: str, tokens: list[str],
                  within: float) -> str:
    started = time.monotonic()
    hoard = [await post(session, url, sdp, tokens[5], "198.51.100.50") for _ in range(8)]
    took = time.monotonic() - started
    refused = [c for s, c in hoard if s != 200]
    waited = await wait_for_slot(session, url, sdp, tokens[6], within)
    return (f"(b) one link, 8 stuck offers from one address: {8 - len(refused)} accepted, "
            f"refused {sorted(set(refused))} (all 8 answered in {took:.2f} s); another "
            f"patient's check waited {said(waited, within)}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--within", type=float, default=90.0)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="casa-bench-db-")
    os.chmod(tmp.name, 0o755)  # noqa: S103 - embedded PostgreSQL runs as its own user
    embedded = db.EmbeddedDatabase(Path(tmp.name))
    server_uri = embedded.start()
    server: Server | None = None
    try:
        await db.ensure_database(server_uri, "casa")
        dsn = db.database_name_uri(server_uri, "casa")
        conn = await asyncpg.connect(dsn)
        await db.prepare(conn, dbroles.SERVING_ROLE)
        await centres.sync(conn, centres.load_data())
        gp_id = await staff_store.create(conn, email="bench.gp@casa.example", full_name="GP",
                                         role=Role.GP, password="",
                                         password_hash=passwords.hash_password("x" * 16),
                                         centres=("san-siro",))
        tokens = [(await make_visit(conn, gp_id, i))[1] for i in range(7)]
        await conn.close()
        # The bench speaks for several client addresses, as a proxy in front would.
        os.environ["CASA_TRUSTED_PROXIES"] = "127.0.0.1/32"
        sdp = await unreachable_offer()
        for case in ("a", "b"):
            # A fresh server process per case: nothing held over from the one before.
            server = Server("casa", db.with_user(dsn, dbroles.SERVING_ROLE))
            await server.wait_ready()
            url = f"http://127.0.0.1:{server.port}/api/v1/precall/offer"
            async with aiohttp.ClientSession() as session:
                print(await (stuck_people if case == "a" else hoarder)(
                    session, url, sdp, tokens, args.within), flush=True)
            server.stop()
            server = None
    finally:
        if server is not None:
            server.stop()
        embedded.stop()
        tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
