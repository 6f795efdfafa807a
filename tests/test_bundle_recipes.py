"""Two instances sharing one database: a bundle named by one instance's page is served by the
other (server.bundle_recipes), with no help from the proxy."""

from __future__ import annotations

import concurrent.futures
import gzip
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from server import static as static_module
from server.app import STATIC_DIR, create_app
from server.bundle_recipes import Recipe
from server.config import Config
from server.static import StaticCopy, VersionedStatic, script_name, style_name
from tests.pg import serving_url

Client = TestClient[Any, Any]
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}
IMMUTABLE = "public, max-age=31536000, immutable"
BUNDLE_URL = re.compile(r'(?:src|href)="(/static/bundles/[^"]+)"')


@pytest.fixture
async def other(config: Config, aiohttp_client: Any,
                password_checks: concurrent.futures.Executor, client: Client) -> Client:
    """A second instance on the same database as ``client`` (its own copy of web/static)."""
    c: Client = await aiohttp_client(create_app(config, password_checks=password_checks))
    return c


def _files(client: Client) -> StaticCopy:
    resource = client.app.router["static"]
    assert isinstance(resource, VersionedStatic)
    return resource.files


def _made(client: Client) -> list[str]:
    bundles = _files(client).directory / "bundles"
    return sorted(p.name for p in bundles.iterdir()) if bundles.exists() else []


async def _bundle_urls(client: Client, path: str) -> list[str]:
    resp = await client.get(path)
    assert resp.status == 200, path
    urls = BUNDLE_URL.findall(await resp.text())
    assert {u.partition("?")[0].rpartition(".")[2] for u in urls} == {"js", "css"}, path
    return [u.replace("&amp;", "&") for u in urls]


async def test_a_bundle_named_by_one_instance_is_served_by_the_other(
        client: Client, other: Client, conn: asyncpg.Connection) -> None:
    urls = [*await _bundle_urls(client, "/join?lang=fr"),
            *await _bundle_urls(client, "/precall?lang=ar")]
    assert _made(other) == []
    # The recipes are in the database by the time the pages arrived.
    names = {r["name"] for r in await conn.fetch("SELECT name FROM static_bundles")}
    assert names == {u.removeprefix("/static/").partition("?")[0] for u in urls}
    for url in urls:
        mine = await client.get(url, headers=IDENTITY)
        theirs = await other.get(url, headers=IDENTITY)
        assert mine.status == theirs.status == 200, url
        assert await theirs.read() == await mine.read(), url
        # Same code, same version: the other instance's answer is cacheable for a year too.
        assert theirs.headers["Cache-Control"] == IMMUTABLE, url
        packed = await other.get(url, headers=GZIP, auto_decompress=False)
        assert packed.status == 200 and packed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await packed.read()) == await mine.read()
    # The page's words came with the recipe: the Arabic device check's words are in the script.
    script = next(u for u in urls if "precall-page" in u)
    body = (await (await other.get(script)).read()).decode()
    assert re.search("[\u0600-\u06ff]", body)
    # The other instance's own page naming the same bundles publishes nothing new.
    await _bundle_urls(other, "/join?lang=fr")
    assert await conn.fetchval("SELECT count(*) FROM static_bundles") == len(names)


@pytest.mark.parametrize("path", [
    "/static/bundles/join+quick-exit.0123456789ab.js",
    "/static/bundles/casa+records.css",
    "/static/bundles/casa+casa.css",
    "/static/bundles/" + "x" * 300 + ".js",
    "/static/bundles/casa.css.gz",
])
async def test_a_name_nobody_published_is_404_and_makes_nothing(
        client: Client, other: Client, conn: asyncpg.Connection, path: str) -> None:
    await _bundle_urls(client, "/join?lang=it")
    before = await conn.fetchval("SELECT count(*) FROM static_bundles")
    resp = await other.get(path)
    assert resp.status in (403, 404), path
    assert _made(other) == []
    assert await conn.fetchval("SELECT count(*) FROM static_bundles") == before


async def test_a_published_recipe_the_bundler_refuses_is_the_bundlers_error(
        client: Client, other: Client, conn: asyncpg.Connection,
        caplog: pytest.LogCaptureFixture) -> None:
    name = script_name(("no-such-module.js",), None)
    await conn.execute("INSERT INTO static_bundles (name, entries) VALUES ($1, $2)",
                       name, ["no-such-module.js"])
    with caplog.at_level(logging.ERROR):
        resp = await other.get(f"/static/{name}")
    assert resp.status == 500
    assert any("no module no-such-module.js" in (r.exc_text or "") for r in caplog.records)
    assert _made(other) == []


async def test_a_recipe_that_does_not_make_its_name_makes_nothing(
        other: Client, conn: asyncpg.Connection) -> None:
    # Entries and words that hash to another name, and a stylesheet of other files.
    await conn.executemany(
        "INSERT INTO static_bundles (name, entries, strings) VALUES ($1, $2, $3::jsonb)",
        [("bundles/join.0123456789ab.js", ["join.js"], None),
         ("bundles/casa+call.css", ["casa.css", "kiosk.css"], None),
         ("bundles/casa.css", ["casa.css"], '{"a": "b"}')])
    for name in ("bundles/join.0123456789ab.js", "bundles/casa+call.css", "bundles/casa.css"):
        assert (await other.get(f"/static/{name}")).status == 404, name
    assert _made(other) == []


async def test_the_serving_role_may_only_read_and_add_recipes(db_url: str) -> None:
    serving = await asyncpg.connect(serving_url(db_url))
    try:
        rights = {p: await serving.fetchval(
            "SELECT has_table_privilege('static_bundles', $1)", p)
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")}
    finally:
        await serving.close()
    assert rights == {"SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False,
                      "TRUNCATE": False}


def test_a_copy_makes_a_bounded_number_of_bundles_from_recipes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static_module, "MAX_FROM_RECIPES", 1)
    root = tmp_path / "static"
    shutil.copytree(STATIC_DIR, root)
    (tmp_path / "copy").mkdir()
    files = StaticCopy(root, tmp_path / "copy")
    first = Recipe(style_name(("casa.css",)), ("casa.css",))
    second = Recipe(style_name(("casa.css", "call.css")), ("casa.css", "call.css"))
    assert files.make(first) and files.version(first.name) is not None
    assert files.make(first), "made already: no more work"
    assert not files.make(second) and files.version(second.name) is None
    # A page of this instance still gets its bundles.
    assert files.styles(("casa.css", "call.css")) == second.name
