"""Records benchmark: notes written and read per second through the records layer, with
encryption and with encryption switched off (here only), and ``casa keys rotate`` over
100,000 notes.

    python -m bench.records_bench [--notes 300] [--rounds 10] [--workers 4] [--rotate 100000]

Uses DATABASE_URL (a server where it may create a scratch database) or an embedded
PostgreSQL in a temporary directory. Prints one line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import asyncpg

from records import content, keyring
from records.access import Category
from records.crypto import Binding, Envelope, RowId, Sealed
from records.service import Records
from server import db, dbroles, patients
from server import staff as staff_store
from server.staff import Role

ROOT = Path(__file__).resolve().parent.parent
# A typical consultation note: ~2 KiB of text plus a few measurements.
NOTE = content.parse({"reason": "Controllo " * 10, "assessment": "Valutazione clinica " * 40,
                      "plan": "Piano " * 60, "text": "Testo libero della visita. " * 30,
                      "measurements": {"heart_rate": {"value": 72}, "spo2": {"value": 97}}})


class PlainEnvelope(Envelope):
    """Encryption switched off, for this benchmark only: same records path, no AES."""

    def seal(self, plaintext: bytes, row: Binding, kek_id: str | None = None) -> Sealed:
        return Sealed(plaintext, b"-", self.ring.current)

    def open(self, sealed: Sealed, row: Binding) -> bytes:
        return sealed.ciphertext


async def setup_people(pool: asyncpg.Pool) -> tuple[staff_store.Staff, int, int]:
    async with pool.acquire() as conn, conn.transaction():
        from server import centres

        await centres.sync(conn, centres.load_data())
        sid = await staff_store.create(conn, email=f"bench{time.time_ns()}@x.example",
                                       full_name="Bench GP", role=Role.GP, password="",
                                       password_hash="x", centres=("san-siro",))
        p = await patients.create(conn, patients.NewPatient("Bench", "Patient", date(1950, 1, 1),
                                                            home_centre_id="san-siro"))
        # One consultation holds every benchmark note (notes reference a booking).
        booking = await conn.fetchval(
            "INSERT INTO bookings (centre_id, service_code, mode, patient_id, clinician_id, "
            "during) VALUES ('san-siro', 'gp_visit', 'home_video', $1, $2, "
            "tstzrange(now(), now() + interval '20 minutes')) RETURNING id", p.id, sid)
    gp = await staff_store.get(pool, sid)
    assert gp is not None
    return gp, p.id, int(booking)


async def _throughput(pool: asyncpg.Pool, rec: Records, gp: staff_store.Staff, patient: int,
                      booking: int, n: int, workers: int) -> tuple[float, float]:
    ids: list[int] = []

    async def write(k: int) -> None:
        for _ in range(k, n, workers):
            async with pool.acquire() as conn, conn.transaction():
                note = await rec.create(conn, gp, booking_id=booking, patient_id=patient,
                                        category=Category.GP, content=NOTE)
            ids.append(note.id)

    async def read(k: int) -> None:
        for i in range(k, n, workers):
            async with pool.acquire() as conn, conn.transaction():
                view = await rec.read(conn, gp, ids[i])
            assert view.versions[0].content is not None

    t0 = time.perf_counter()
    await asyncio.gather(*[write(k) for k in range(workers)])
    t1 = time.perf_counter()
    await asyncio.gather(*[read(k) for k in range(workers)])
    t2 = time.perf_counter()
    return n / (t1 - t0), n / (t2 - t1)


def _micro(ring: keyring.Keyring) -> tuple[float, float]:
    env, raw, row = Envelope(ring), NOTE.to_bytes(), RowId(1, 1, 1)
    n = 5000
    t0 = time.perf_counter()
    sealed = [env.seal(raw, row) for _ in range(n)]
    t1 = time.perf_counter()
    for s in sealed:
        env.open(s, row)
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6


async def bulk_notes(pool: asyncpg.Pool, ring: keyring.Keyring, gp_id: int, patient: int,
                      booking: int, n: int) -> float:
    """COPY ``n`` signed one-version notes with real envelopes (not through the API), in the
    first layout (data keys wrapped by the master key): ``casa keys rotate`` then moves them
    all to patient and day keys, the work of an upgrade."""
    env = Envelope(ring)
    t0 = time.perf_counter()
    start = int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM notes")) + 1
    raw = content.parse({"text": "bulk"}).to_bytes()
    note_rows, version_rows = [], []
    for note_id in range(start, start + n):
        s = env.seal(raw, RowId(note_id, 1, patient))
        note_rows.append((note_id, booking, patient, "gp", gp_id))
        version_rows.append((note_id, 1, gp_id, "signed", s.ciphertext, s.wrapped_key,
                             s.kek_id))
    async with pool.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(
            "notes", records=note_rows,
            columns=["id", "booking_id", "patient_id", "category", "author_id"])
        await conn.execute("SELECT setval(pg_get_serial_sequence('notes', 'id'), $1)",
                           start + n)
        await conn.execute("ALTER TABLE note_versions ALTER COLUMN signed_at SET DEFAULT now()")
        await conn.copy_records_to_table(
            "note_versions", records=version_rows,
            columns=["note_id", "version", "author_id", "status", "ciphertext", "wrapped_key",
                     "kek_id"])
        await conn.execute("ALTER TABLE note_versions ALTER COLUMN signed_at DROP DEFAULT")
    await pool.execute("ANALYZE note_versions")
    return time.perf_counter() - t0


def _cli(env: dict[str, str], *args: str) -> tuple[float, str]:
    code = "import sys; from server.cli import main; sys.exit(main(sys.argv[1:]))"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=600)
    return time.perf_counter() - t0, out.stdout.strip().splitlines()[-1]


async def main(args: argparse.Namespace) -> None:
    tmp = tempfile.TemporaryDirectory(prefix="casa-bench-")
    # The embedded server runs as its own system user, which must enter this directory.
    os.chmod(tmp.name, 0o755)  # noqa: S103
    embedded = None
    server_uri = os.environ.get("DATABASE_URL")
    if not server_uri:
        embedded = db.EmbeddedDatabase(Path(tmp.name))
        server_uri = embedded.start()
    name = f"casa_bench_{os.getpid()}"
    await db.ensure_database(server_uri, name)
    dsn = db.database_name_uri(server_uri, name)
    ring_path = Path(tmp.name) / "keyring.json"
    ring = keyring.load_or_create(ring_path)
    pool = await db.create_pool(dsn)
    try:
        async with pool.acquire() as conn:
            await db.prepare(conn, dbroles.SERVING_ROLE)
        gp, patient, booking = await setup_people(pool)
        seal_us, open_us = _micro(ring)
        print(f"envelope only ({len(NOTE.to_bytes())} B note): seal {seal_us:.1f} us, "
              f"open {open_us:.1f} us")
        await _throughput(pool, Records(Envelope(ring)), gp, patient, booking, 200,
                          args.workers)  # warm-up
        results: dict[str, list[tuple[float, float]]] = {"encrypted": [], "plain": []}
        modes = [("plain", PlainEnvelope(ring)), ("encrypted", Envelope(ring))]
        for i in range(args.rounds):  # interleaved, order alternating, so drift hits both
            for mode, env in modes if i % 2 == 0 else modes[::-1]:
                results[mode].append(await _throughput(pool, Records(env), gp, patient, booking,
                                                       args.notes, args.workers))
        med = {m: (statistics.median(w for w, _ in r), statistics.median(rd for _, rd in r))
               for m, r in results.items()}
        for mode in ("encrypted", "plain"):
            w, r = med[mode]
            print(f"records layer, {mode:9}: write {w:7.0f} notes/s, read {r:7.0f} notes/s "
                  f"({args.workers} workers, {args.notes} notes, median of {args.rounds})")
        print(f"cost of encryption: write x{med['plain'][0] / med['encrypted'][0]:.2f}, "
              f"read x{med['plain'][1] / med['encrypted'][1]:.2f} (plain / encrypted rate)")
        # The plain-mode rows have no real wrapped key: mark them erased, out of rotation.
        await pool.execute("ALTER TABLE note_versions DISABLE TRIGGER note_versions_guard")
        await pool.execute("UPDATE note_versions SET wrapped_key = NULL, erased_at = now() "
                           "WHERE wrapped_key = '\\x2d'::bytea")
        await pool.execute("ALTER TABLE note_versions ENABLE TRIGGER note_versions_guard")
        copy_s = await bulk_notes(pool, ring, gp.id, patient, booking, args.rotate)
        print(f"bulk load of {args.rotate} notes (seal + COPY): {copy_s:.1f} s")
    finally:
        await pool.close()
    cli_env = {**os.environ, "DATABASE_URL": db.with_user(dsn, dbroles.SERVING_ROLE),
               "CASA_SECRET_KEY": "bench-" + "k" * 40,
               "CASA_KEYRING_FILE": str(ring_path), "CASA_DATA_DIR": tmp.name,
               "CASA_LOG_LEVEL": "WARNING"}
    conn = await asyncpg.connect(dsn)
    total = int(await conn.fetchval(
        "SELECT count(*) FROM note_versions WHERE wrapped_key IS NOT NULL"))
    await conn.close()
    secs, line = _cli(cli_env, "keys", "rotate")
    print(f"casa keys rotate over {total} note versions: {secs:.1f} s "
          f"({total / secs:.0f} keys/s, process start included) -> {line}")
    secs, line = _cli(cli_env, "keys", "verify")
    print(f"casa keys verify over {total} note versions: {secs:.1f} s -> {line}")
    if embedded is not None:
        embedded.stop()
    tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rotate", type=int, default=100_000)
    asyncio.run(main(parser.parse_args()))
