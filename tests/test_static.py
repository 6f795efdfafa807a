"""Static files: gzip for text assets, caching by version, freshness, traversal refused."""

from __future__ import annotations

import asyncio
import gc
import gzip
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import app as app_module
from server import static as static_module
from server.app import STATIC_DIR, create_app
from server.config import Config
from server.static import StaticCopy, VersionedStatic, accepts_gzip, version_of
from server.static_modules import rewrite_imports
from tests.test_http import assert_security_headers

Client = TestClient[Any, Any]
GZIP = {"Accept-Encoding": "gzip, deflate"}
IMMUTABLE = "public, max-age=31536000, immutable"
TEMPLATES = STATIC_DIR.parent / "templates"


@pytest.fixture
async def copy_client(config: Config, tmp_path: Path, aiohttp_client: Any,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[Client, Path]:
    """The real app serving a scratch copy of web/static, so a test may change files (and
    see them at once: the source is looked at on every use)."""
    root = tmp_path / "static"
    shutil.copytree(STATIC_DIR, root)
    monkeypatch.setattr(app_module, "STATIC_DIR", root)
    monkeypatch.setattr(static_module, "REFRESH_INTERVAL_S", 0.0)
    c: Client = await aiohttp_client(create_app(config))
    return c, root


def _url(client: Client, filename: str) -> str:
    """The versioned URL templates print for ``filename`` (``static()``)."""
    return str(client.app.router["static"].url_for(filename=filename))


async def test_gzip_served_when_accepted_and_identical_once_decompressed(client: Client) -> None:
    plain = await client.get("/static/js/call.js", headers={"Accept-Encoding": "identity"})
    original = await plain.read()
    resp = await client.get("/static/js/call.js", headers=GZIP, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Type"].startswith("text/javascript")
    assert resp.headers["Vary"] == "Accept-Encoding"
    raw = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(raw) < len(original) / 2
    assert gzip.decompress(raw) == original


async def test_module_imports_carry_the_version_templates_print(client: Client) -> None:
    source = (STATIC_DIR / "js" / "call.js").read_bytes()
    url = _url(client, "js/call.js")
    version = url.partition("?v=")[2]
    # Exactly as the import specifiers spell it (no %-escapes): else the browser fetches twice.
    assert version and "%" not in url
    served = await (await client.get(url)).read()
    # Only the import specifiers changed, and each names the URL static() gives its target.
    assert served.replace(f"?v={version}".encode(), b"") == source
    imported = re.findall(rb"from '\./([\w-]+\.js)\?v=([\w=-]+)'", served)
    assert {name.decode() for name, _ in imported} >= {"i18n-client.js", "call-stage.js"}
    for name, v in imported:
        assert _url(client, f"js/{name.decode()}") == f"/static/js/{name.decode()}?v={v.decode()}"
        resp = await client.get(f"/static/js/{name.decode()}?v={v.decode()}")
        assert resp.headers["Cache-Control"] == IMMUTABLE


def test_rewrite_touches_only_relative_import_specifiers() -> None:
    src = (b"import { a } from './a.js';\nimport \"../b.js\";\nconst m = import('./c.js');\n"
           b"export { d } from './d.js';\nimport x from 'https://x.example/e.js';\n"
           b"const s = 'from ./f.js';\nimport y from './g.js?v=1';\n")
    out = rewrite_imports(src, "V")
    assert out == (b"import { a } from './a.js?v=V';\nimport \"../b.js?v=V\";\n"
                   b"const m = import('./c.js?v=V');\nexport { d } from './d.js?v=V';\n"
                   b"import x from 'https://x.example/e.js';\nconst s = 'from ./f.js';\n"
                   b"import y from './g.js?v=1';\n")


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br", "deflate", None])
async def test_identity_when_gzip_not_accepted(client: Client, accept: str | None) -> None:
    original = (STATIC_DIR / "css" / "casa.css").read_bytes()
    if accept is None:
        resp = await client.get("/static/css/casa.css", skip_auto_headers=["Accept-Encoding"],
                                auto_decompress=False)
    else:
        resp = await client.get("/static/css/casa.css", headers={"Accept-Encoding": accept},
                                auto_decompress=False)
    assert resp.status == 200
    assert "Content-Encoding" not in resp.headers
    # A shared cache must not hand this copy to a gzip client or the reverse.
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert resp.headers["Content-Type"].startswith("text/css")
    assert await resp.read() == original


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("GZIP, br") and accepts_gzip("*")
    assert accepts_gzip("br;q=1.0, gzip;q=0.5") and accepts_gzip("identity, *;q=0.1")
    assert not accepts_gzip("") and not accepts_gzip("gzip;q=0") and not accepts_gzip("br")
    assert not accepts_gzip("gzip;q=nonsense") and not accepts_gzip("*;q=0, identity")
    assert not accepts_gzip("gzip;q=0.0, *")


async def test_versioned_url_is_immutable_and_unversioned_revalidates(client: Client) -> None:
    page = await (await client.get("/login")).text()
    href = re.search(r'href="(/static/css/casa\.css\?v=[^"]+)"', page)
    assert href, "the login page links its stylesheet with a version"
    versioned = await client.get(href.group(1), headers=GZIP)
    assert versioned.status == 200
    assert versioned.headers["Cache-Control"] == IMMUTABLE

    plain = await client.get("/static/css/casa.css", headers=GZIP)
    assert plain.headers["Cache-Control"] == "no-cache"
    etag = plain.headers["ETag"]
    again = await client.get("/static/css/casa.css",
                             headers={**GZIP, "If-None-Match": etag}, auto_decompress=False)
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "no-cache"
    assert again.headers["Vary"] == "Accept-Encoding"
    assert_security_headers(again)
    # The identity form has its own tag: a gzip tag does not validate it.
    other = await client.get("/static/css/casa.css",
                             headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert other.status == 200
    stale = await client.get("/static/css/casa.css", headers={"If-None-Match": '"nope"'})
    assert stale.status == 200
    since = await client.get("/static/css/casa.css",
                             headers={"If-Modified-Since": plain.headers["Last-Modified"]})
    assert since.status == 304


@pytest.mark.parametrize("query", ["?v=wrong", "?v=", "?x=1"])
async def test_a_wrong_version_is_served_but_not_kept(client: Client, query: str) -> None:
    resp = await client.get("/static/js/call.js" + query)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-cache"


async def test_a_file_changed_on_disk_is_served_fresh(copy_client: tuple[Client, Path]) -> None:
    client, root = copy_client
    path = root / "js" / "i18n-client.js"
    old = path.read_bytes()
    old_url = _url(client, "js/i18n-client.js")
    old_importer = _url(client, "js/call.js")
    first = await client.get("/static/js/i18n-client.js", headers=GZIP, auto_decompress=False)
    assert gzip.decompress(await first.read()) == old
    old_etag = first.headers["ETag"]
    new = old + b"\n// changed on disk while the server runs\n" + b"export const x = 1;\n" * 40
    path.write_bytes(new)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))

    for accept in ("gzip", "identity"):
        resp = await client.get("/static/js/i18n-client.js",
                                headers={"Accept-Encoding": accept, "If-None-Match": old_etag})
        assert resp.status == 200
        assert await resp.read() == new
    # Every module gets a new URL (an importer's bytes name the changed module's URL), and
    # the old URLs no longer name what is served: not cached for a year.
    new_url = _url(client, "js/i18n-client.js")
    assert new_url != old_url and _url(client, "js/call.js") != old_importer
    assert (await client.get(old_url)).headers["Cache-Control"] == "no-cache"
    assert (await client.get(old_importer)).headers["Cache-Control"] == "no-cache"
    assert (await client.get(new_url)).headers["Cache-Control"] == IMMUTABLE
    importer = await (await client.get(_url(client, "js/call.js"))).text()
    assert "./i18n-client.js" + new_url.partition("i18n-client.js")[2] in importer

    css = root / "css" / "casa.css"
    css_url = _url(client, "css/casa.css")
    css.write_bytes(css.read_bytes() + b"\n.changed { color: red; }\n")
    resp = await client.get("/static/css/casa.css", headers=GZIP)
    assert (await resp.read()).endswith(b".changed { color: red; }\n")
    assert (await client.get(css_url)).headers["Cache-Control"] == "no-cache"


async def test_a_deleted_file_is_gone(copy_client: tuple[Client, Path]) -> None:
    client, root = copy_client
    assert (await client.get("/static/js/quality.js")).status == 200
    (root / "js" / "quality.js").unlink()
    assert (await client.get("/static/js/quality.js")).status == 404


async def _raw_get(client: Client, target: str) -> tuple[int, bytes]:
    """Send ``target`` byte for byte (client libraries would normalise the dots away)."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("target", [
    "/static/../server/config.py",
    "/static/js/../../../server/config.py",
    "/static/%2e%2e/server/config.py",
    "/static/%2E%2E/%2E%2E/server/config.py",
    "/static/..%2fserver%2fconfig.py",
    "/static/js/..%2f..%2f..%2fserver%2fconfig.py",
    "/static/%2e%2e%2f%2e%2e%2fserver%2fconfig.py",
    "/static/..%5c..%5cserver%5cconfig.py",
    "/static//work/main/server/config.py",
    "/static/%2fetc%2fpasswd",
    "/static/js/call.js%00.css",
    "/static/js/",
    "/static/",
])
async def test_path_traversal_is_refused(client: Client, target: str) -> None:
    status, body = await _raw_get(client, target)
    assert status in (400, 403, 404)
    assert b"class Config" not in body and b"root:" not in body


async def test_a_symlink_out_of_the_directory_is_refused(copy_client: tuple[Client, Path]) -> None:
    client, root = copy_client
    (root / "js" / "leak.js").symlink_to(Path(app_module.__file__).parent / "config.py")
    assert (await client.get("/static/js/leak.js")).status == 404


@pytest.mark.parametrize("path", ["/static/js/call.js", "/static/favicon.svg",
                                  "/static/sounds/chime.wav", "/static/js/missing.js"])
async def test_static_responses_carry_the_security_headers(client: Client, path: str) -> None:
    resp = await client.get(path, headers=GZIP)
    assert_security_headers(resp)
    assert resp.headers.get("X-Request-Id")


async def test_the_chime_is_streamed_with_ranges_and_cached_by_version(client: Client) -> None:
    wav = (STATIC_DIR / "sounds" / "chime.wav").read_bytes()
    part = await client.get("/static/sounds/chime.wav", headers={"Range": "bytes=0-99"})
    assert part.status == 206
    assert await part.read() == wav[:100]
    assert "Content-Encoding" not in part.headers
    assert part.headers["Cache-Control"] == "no-cache"
    versioned = await client.get(f"/static/sounds/chime.wav?v={version_of(wav)}")
    assert versioned.headers["Cache-Control"] == IMMUTABLE
    assert await versioned.read() == wav


async def test_head_gives_headers_without_body(client: Client) -> None:
    resp = await client.head("/static/js/call.js", headers=GZIP)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert await resp.read() == b""


async def test_pages_are_never_compressed(client: Client) -> None:
    # BREACH: a page holds a CSRF token next to reflected input.
    resp = await client.get("/login", headers=GZIP, auto_decompress=False)
    assert "Content-Encoding" not in resp.headers
    assert b"csrf_token" in await resp.read()


IMPORT_RE = re.compile(r"""(?:import|from)\s*\(?\s*['"]\./([\w-]+)\.js['"]""")


def _imports(module: str) -> set[str]:
    """Modules ``module`` imports, transitively (relative imports under web/static/js)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        source = (STATIC_DIR / "js" / f"{todo.pop()}.js").read_text()
        for name in IMPORT_RE.findall(source):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


# Every page_scripts("a.js", "b.js", ...) call in the templates: the page's entry modules.
PAGE_SCRIPTS = re.compile(r"page_scripts\(((?:\s*\"[\w-]+\.js\",?)*)")
BUNDLED = re.compile(rb'^casa\$modules\["([\w-]+)\.js"\] = ', re.M)


def _page_entries() -> dict[str, list[tuple[str, ...]]]:
    found: dict[str, list[tuple[str, ...]]] = {}
    for template in sorted(TEMPLATES.rglob("*.html")):
        for call in PAGE_SCRIPTS.findall(template.read_text()):
            entries = tuple(re.findall(r'"([\w-]+)\.js"', call))
            found.setdefault(template.relative_to(TEMPLATES).as_posix(), []).append(entries)
    return found


def test_no_page_loads_a_module_but_through_its_bundle() -> None:
    """A module loaded on its own would be one more request, and its imports one more round
    (about 2 s each on slow 3G); away.html's has no import and must say nothing of Casa."""
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        loose = re.findall(r'<script type="module" src="\{\{ static\(\'js/([\w-]+)', text)
        if template.name == "away.html":
            assert loose == ["away"] and not _imports("away")
        else:
            assert not loose, template
        assert "modulepreload" not in text, template


def test_every_page_bundle_holds_its_whole_import_graph() -> None:
    """For each page's entries, the served bundle holds every module they reach (the graph
    computed here from web/static/js, not by the bundler), each once, and nothing else."""
    files = StaticCopy(STATIC_DIR)
    pages = _page_entries()
    assert {"call/consultation.html", "call/precall.html", "kiosks/kiosk.html",
            "join/form.html", "join/refused.html", "call/dashboard.html"} <= set(pages)
    for template, calls in pages.items():
        for entries in calls:
            name = files.scripts(tuple(f"{e}.js" for e in entries))
            body = files.read(name)
            assert body is not None, (template, entries)
            bundled = BUNDLED.findall(body)
            expected = set(entries).union(*(_imports(e) for e in entries))
            assert {b.decode() for b in bundled} == expected, (template, entries)
            assert len(bundled) == len(set(bundled)), "each module once"
            assert b"\nimport " not in body and b"\nexport " not in body


def test_a_patients_call_page_has_no_clinicians_module() -> None:
    calls = _page_entries()["call/consultation.html"]
    patient = [e for e in calls if "call-panel" not in e]
    clinician = [e for e in calls if "call-panel" in e]
    assert len(patient) == len(clinician) == 1
    reached = set(patient[0]).union(*(_imports(e) for e in patient[0]))
    assert "call" in reached and not reached & {"call-panel", "notes", "waiting"}
    assert "notes" in clinician[0]


def test_a_missing_module_gets_an_unversioned_url(client: Client) -> None:
    assert _url(client, "js/no-such-module.js") == "/static/js/no-such-module.js"
    assert _url(client, "css/no-such.css") == "/static/css/no-such.css"


def test_the_served_copy_is_built_outside_the_repository_with_gzip_siblings(
        client: Client) -> None:
    resource = client.app.router["static"]
    assert isinstance(resource, VersionedStatic)
    copy = resource.files.directory
    assert copy != STATIC_DIR and STATIC_DIR not in copy.parents
    served, packed = copy / "js" / "call.js", copy / "js" / "call.js.gz"
    assert gzip.decompress(packed.read_bytes()) == served.read_bytes()
    assert not (copy / "sounds" / "chime.wav.gz").exists()  # only text assets
    assert not list(STATIC_DIR.rglob("*.gz")), "nothing is generated in the repository"


def test_the_copy_is_removed_with_its_owner() -> None:
    files = StaticCopy(STATIC_DIR)
    directory = files.directory
    assert (directory / "css" / "casa.css").is_file()
    del files
    gc.collect()
    assert not directory.exists()


def test_the_source_is_looked_at_once_per_interval(tmp_path: Path) -> None:
    """Versioned URLs ask for the current version on every page: the source is walked at most
    once per interval, and a change is served once the interval has passed."""
    root = tmp_path / "static"
    shutil.copytree(STATIC_DIR, root)
    now = [100.0]
    (tmp_path / "copy").mkdir()
    files = StaticCopy(root, tmp_path / "copy", interval_s=1.0, clock=lambda: now[0])
    before = files.version("css/casa.css")
    css = root / "css" / "casa.css"
    css.write_bytes(css.read_bytes() + b"\n.changed { color: red; }\n")
    now[0] += 0.5
    assert not files.due() and files.version("css/casa.css") == before
    now[0] += 0.5
    assert files.due() and files.version("css/casa.css") != before
    assert not files.due()
