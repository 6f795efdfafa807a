"""What a thief of the data directory finds of a reading: nothing. A PostgreSQL of this test
alone; readings sent by the patient's link and through the API, read back through Casa
(so they were stored), a checkpoint, then every file under pgdata (base, pg_wal, TOAST,
pg_statistic after ANALYZE) searched byte by byte for the words and the numbers in the clear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.monitoring.conftest import enrol
from tests.pg import OwnServer
from tests.pg import own_server as running
from tests.records.conftest import api_headers, login_as

# Words no page, id or key would hold by chance; a number written the way the sealed JSON
# would write it.
MARKER = "PLAINTEXT-READING-3c9e5a"
WEIGHT = b'"weight":187.3'


@pytest.fixture
async def own_pg() -> AsyncIterator[OwnServer]:
    async with running("casa-test-readings-") as own:
        yield own


@pytest.fixture
def db_url(own_pg: OwnServer) -> str:
    """Every fixture of the suite (app, connection, staff) on this test's own server."""
    return own_pg.url


def _files_holding(pgdata: Path, needles: list[bytes]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in sorted(p for p in pgdata.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n for n in needles if n in data]
        if hits:
            found[str(path.relative_to(pgdata))] = hits
    return found


async def test_no_reading_in_the_clear_in_pgdata(own_pg, client, conn, rec, ward, db_url):
    plan, _ = await enrol(conn, rec, ward.nurse, ward.patient,
                          measurements=["weight", "symptoms"])
    await login_as(client, ward.nurse, db_url)
    h = await api_headers(client)
    for body in ({"measurement": "symptoms", "text": MARKER},
                 {"measurement": "weight", "values": {"weight": 187.3}}):
        resp = await client.post(f"/api/v1/monitoring/plans/{plan.id}/readings", headers=h,
                                 json=body)
        assert resp.status == 201, await resp.text()
    listed = await (await client.get(f"/api/v1/monitoring/plans/{plan.id}/readings",
                                     headers=h)).json()
    assert [r["text"] for r in listed["readings"]][:1] == [MARKER]
    assert listed["readings"][1]["values"] == {"weight": 187.3}
    await conn.execute("ANALYZE")
    await conn.execute("CHECKPOINT")
    needles = [MARKER.encode(), MARKER.encode("utf-16-le"), WEIGHT]
    assert not _files_holding(own_pg.pgdata, needles)
    # The search finds what is there: the patient's name, written in the clear, is found.
    name = (await conn.fetchval("SELECT given_name FROM patients WHERE id = $1",
                                ward.patient)).encode()
    assert _files_holding(own_pg.pgdata, [name])
