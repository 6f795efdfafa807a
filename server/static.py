"""Static files under /static: a versioned, pre-compressed copy served by aiohttp's static route.

Patients often open Casa on old phones over poor mobile networks, so the scripts and styles
should cross the network once, compressed. At start-up the app builds a copy of web/static in
a temporary directory (``StaticCopy``):

- ES modules' relative imports are rewritten to carry a version (server.static_modules), so
  every module URL a page uses is versioned and cacheable for a year.
- Text assets (JS, CSS, SVG, JSON) get a ``.gz`` sibling when gzip makes them smaller.
  aiohttp's FileResponse sends that sibling itself to a client that accepts gzip.
- Symlinks leading out of web/static are not copied.

aiohttp's own static route serves the copy (routing, traversal checks, ranges, HEAD, ETag,
304s); ``VersionedStatic`` only prints URLs with ``?v=`` the version of the bytes served (the
file's hash, or for ES modules the modules' shared version). The ``static_files`` middleware
adds what the route does not:

- ``Cache-Control``: a URL whose ``v`` is the served version is cached for a year,
  ``immutable``; any other URL (an old version, no version) must revalidate (``no-cache``),
  which costs a 304 and no body. ``Vary: Accept-Encoding`` on every answer.
- the route picks the ``.gz`` sibling when the header merely mentions gzip; the middleware
  first reduces Accept-Encoding to what the client really accepts (``gzip;q=0`` is a no).
- a file changed on disk is copied again before it is answered (a stat of each source file,
  a few dozen, per request), so an edit is never served stale and never cached under the
  version of other bytes.

Pages are never compressed here or anywhere in Casa: they carry CSRF tokens next to text
reflected from the request, and compressing both together leaks the secret byte by byte
(BREACH). The security headers are added by server.middleware.security_headers, as for every
routed response.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware, PathLike
from yarl import URL

from server import bundle_recipes
from server.bundle_recipes import Recipe
from server.bundles import BundleError, bundle, stylesheet
from server.keys import POOL
from server.static_modules import modules_version, rewrite_imports

log = logging.getLogger("casa.static")

PREFIX = "/static"
# Where server.bundles' files are written in the copy (never a name in web/static).
BUNDLES = "bundles"
VERSION_KEY = "v"  # what aiohttp's StaticResource calls its version query
# Given a .gz sibling; everything else is served as it is.
TEXT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Below this gzip's header and a second round of parsing cost more than they save.
MIN_COMPRESS_BYTES = 256

Stamp = tuple[tuple[str, int, int, int, int], ...]
# Bundles a copy makes from other instances' recipes: every page kind in every language is a
# few hundred; the bound keeps a table filled by other means from making the server work
# without end.
MAX_FROM_RECIPES = 2000
# A page waits this long at most for its new bundles' recipes to be recorded.
PUBLISH_TIMEOUT_S = 5.0


def script_name(entries: tuple[str, ...], strings: Mapping[str, str] | None) -> str:
    """The name of the script bundle of ``entries`` with ``strings``: the entries' stems and a
    hash of both (the words make a name per language)."""
    key = json.dumps([entries, strings], ensure_ascii=False, sort_keys=True)
    stem = "+".join(Path(e).stem for e in entries)[:60]
    return f"{BUNDLES}/{stem}.{hashlib.sha256(key.encode()).hexdigest()[:12]}.js"


def style_name(names: tuple[str, ...]) -> str:
    """The name of the stylesheet joining ``names``."""
    return f"{BUNDLES}/{'+'.join(Path(n).stem for n in names)}.css"


def version_of(body: bytes) -> str:
    """The ``v`` of a file that is not an ES module: urlsafe base64 sha256 of its bytes, as
    aiohttp's StaticResource computes it."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode("ascii")


def accepts_gzip(accept_encoding: str) -> bool:
    """True when Accept-Encoding allows gzip (``gzip`` or ``*`` with a non-zero q)."""
    allowed = ("gzip", "*")
    found: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip()
        if coding not in allowed:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found[coding] = q > 0
    return found.get("gzip", found.get("*", False))


@dataclass(frozen=True)
class Built:
    """One file of the copy: the version its URLs carry and the digest of the bytes written."""

    version: str
    digest: bytes


# The source is looked at again at most this often. Walking and stat-ing it costs about 1.7 ms,
# and every versioned URL a page prints asks for the current version: checked on each, a page
# with eight assets held the event loop about 13 ms. A file edited on disk is served within
# this interval.
REFRESH_INTERVAL_S = 1.0


class StaticCopy:
    """The served copy of ``source`` in ``directory`` (a new temporary directory when None,
    removed with this object or at exit). ``refresh()`` brings it up to date with the source
    when it was last checked ``interval_s`` ago or more (``REFRESH_INTERVAL_S`` when None); it
    is thread-safe and cheap when nothing changed."""

    def __init__(self, source: Path, directory: Path | None = None,
                 interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = Path(source).resolve(strict=True)
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="casa-static-"))
            weakref.finalize(self, shutil.rmtree, directory, True)
        self.directory = Path(directory).resolve(strict=True)
        self._lock = threading.Lock()
        self._stamp: Stamp | None = None
        self._built: dict[str, Built] = {}
        # JS and CSS sources by path, and the bundles asked for so far (name -> maker), made
        # again whenever a source changes.
        self._sources: dict[str, str] = {}
        self._bundles: dict[str, Callable[[Mapping[str, str]], str]] = {}
        # What each bundle was made of (published for the other instances), and how many were
        # made from another instance's recipe.
        self._recipes: dict[str, Recipe] = {}
        self._from_recipes = 0
        # The bundles whose recipes are known to be in the database.
        self.published: set[str] = set()
        self.interval_s = REFRESH_INTERVAL_S if interval_s is None else interval_s
        self.clock = clock
        self._checked_at: float | None = None
        self.refresh()

    def version(self, name: str, *, refresh: bool = True) -> str | None:
        """The version of ``name`` (a path relative to the source) as served now; None when
        there is no such file. ``refresh``: first look for changes in the source."""
        if refresh:
            self.refresh()
        built = self._built.get(name.lstrip("/"))
        return None if built is None else built.version

    def scripts(self, entries: tuple[str, ...],
                strings: Mapping[str, str] | None = None) -> str:
        """The name of the bundle of ``entries`` (paths under js/) and their imports, with
        ``strings`` for i18n-client.js (server.bundles); made on first asking, then kept up to
        date with the sources. Raises BundleError for a module the bundler cannot read."""
        name = script_name(entries, strings)

        def make(sources: Mapping[str, str]) -> str:
            js = {n.removeprefix("js/"): b for n, b in sources.items() if n.startswith("js/")}
            return bundle(entries, js, strings)

        return self._bundle(Recipe(name, entries, strings), make)

    def styles(self, names: tuple[str, ...]) -> str:
        """The name of the stylesheet joining ``names`` (paths under css/, in order)."""
        name = style_name(names)

        def make(sources: Mapping[str, str]) -> str:
            return stylesheet(names, {n.removeprefix("css/"): b for n, b in sources.items()
                                      if n.startswith("css/")})

        return self._bundle(Recipe(name, names), make)

    def recipe(self, name: str) -> Recipe | None:
        """The recipe of the bundle ``name`` this copy made; None for any other name."""
        return self._recipes.get(name)

    def make(self, recipe: Recipe) -> bool:
        """Make the bundle of another instance's ``recipe`` (server.bundle_recipes), unless its
        name is not the one this code gives its entries and words, or this copy has made
        ``MAX_FROM_RECIPES`` such bundles already. True when the bundle is servable. Raises
        BundleError, as for a page, for a module the bundler refuses."""
        if recipe.name in self._bundles:
            return True
        made: str | None
        if recipe.is_script:
            made = script_name(recipe.entries, recipe.strings)
        else:
            made = None if recipe.strings is not None else style_name(recipe.entries)
        if made != recipe.name:
            log.warning("bundle %s: its recipe makes another name (%s)", recipe.name, made)
            return False
        with self._lock:
            if self._from_recipes >= MAX_FROM_RECIPES:
                log.warning("bundle %s: %d bundles made from recipes already", recipe.name,
                            self._from_recipes)
                return False
            self._from_recipes += 1
        if recipe.is_script:
            self.scripts(recipe.entries, recipe.strings)
        else:
            self.styles(recipe.entries)
        return True

    def _bundle(self, recipe: Recipe, make: Callable[[Mapping[str, str]], str]) -> str:
        name = recipe.name
        self.refresh()
        if name in self._bundles:
            return name
        with self._lock:
            if name not in self._bundles:
                # Made once per page kind and language (a few milliseconds), then served as a
                # file like any other.
                self._add(name, make(self._sources).encode())
                self._bundles[name] = make
                self._recipes[name] = recipe
        return name

    def _add(self, name: str, body: bytes) -> None:
        """Write a made file into the copy (under the lock) and make it servable."""
        digest = hashlib.sha256(body).digest()
        old = self._built.get(name)
        if old is None or old.digest != digest:
            self._write(name, body)
            gz = self.directory / f"{name}.gz"
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            if len(packed) < len(body):
                self._write(f"{name}.gz", packed)
            else:
                gz.unlink(missing_ok=True)
        self._built = {**self._built, name: Built(version_of(body), digest)}

    def read(self, name: str) -> bytes | None:
        """The served identity bytes of ``name``; None when the copy has no such file (only
        names the copy holds are read: no path from a request reaches the disk here)."""
        if name not in self._built:
            return None
        try:
            return (self.directory / name).read_bytes()
        except OSError:
            return None

    def refresh(self) -> None:
        """Copy again what changed in the source since the last look (at most one look per
        ``interval_s``)."""
        if not self.due():
            return
        self._checked_at = self.clock()
        files = self._files()
        stamp: Stamp = tuple((name, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
                             for name, _, st in files)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp != self._stamp:
                self._build(files)
                self._stamp = stamp

    def due(self) -> bool:
        """Whether the next ``refresh()`` looks at the source."""
        return (self._checked_at is None
                or self.clock() - self._checked_at >= self.interval_s)

    def _files(self) -> list[tuple[str, Path, os.stat_result]]:
        """The regular files under the source, sorted, symlinks out of it left out."""
        found = []
        for path in sorted(self.source.rglob("*")):
            try:
                real = path.resolve(strict=True)
                real.relative_to(self.source)
                st = real.stat()
            except (OSError, ValueError, RuntimeError):
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((path.relative_to(self.source).as_posix(), real, st))
        return found

    def _build(self, files: list[tuple[str, Path, os.stat_result]]) -> None:
        bodies: dict[str, bytes] = {}
        for name, path, _ in files:
            try:
                bodies[name] = path.read_bytes()
            except OSError:
                continue  # deleted meanwhile: left out, as if gone
        modules = modules_version({n: b for n, b in bodies.items() if n.endswith(".js")})
        built: dict[str, Built] = {}
        keep: set[str] = set()
        for name, body in bodies.items():
            version = version_of(body)
            if name.endswith(".js"):
                body = rewrite_imports(body, modules, VERSION_KEY)
                version = modules
            digest = hashlib.sha256(body).digest()
            built[name] = Built(version, digest)
            keep.add(name)
            old = self._built.get(name)
            if old is not None and old.digest == digest:
                if (self.directory / f"{name}.gz").exists():
                    keep.add(f"{name}.gz")
                continue
            # Written only when the bytes change: the file's mtime and size make the ETag.
            self._write(name, body)
            if Path(name).suffix.lower() in TEXT_TYPES and len(body) >= MIN_COMPRESS_BYTES:
                packed = gzip.compress(body, compresslevel=9, mtime=0)
                if len(packed) < len(body):
                    self._write(f"{name}.gz", packed)
                    keep.add(f"{name}.gz")
        for path in sorted(self.directory.rglob("*"), reverse=True):
            name = path.relative_to(self.directory).as_posix()
            if path.is_file() and name not in keep and not name.startswith(BUNDLES + "/"):
                path.unlink(missing_ok=True)
        # Bundles keep their entry (so their URLs keep a version) until made again below.
        built.update({n: b for n, b in self._built.items() if n in self._bundles})
        self._built = built
        self._sources = {name: body.decode("utf-8", "replace") for name, body in bodies.items()
                         if Path(name).suffix in (".js", ".css")}
        for name, make in list(self._bundles.items()):
            try:
                self._add(name, make(self._sources).encode())
            except BundleError:
                # A module just edited into a form the bundler refuses: the page asking for
                # it next gets the error (a 500 naming the module) instead of old bytes.
                log.exception("bundle %s", name)
                del self._bundles[name]
                del self._recipes[name]

    def _write(self, name: str, body: bytes) -> None:
        """Replace ``name`` at once: a request being served reads the old file or the new."""
        target = self.directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(body)
        os.replace(partial, target)


class VersionedStatic(web.StaticResource):
    """aiohttp's static route over the copy; its URLs carry the version of what it serves."""

    def __init__(self, files: StaticCopy, *, name: str) -> None:
        super().__init__(PREFIX, files.directory, name=name, append_version=False)
        self.files = files

    def url_for(  # type: ignore[override]
        self, *, filename: PathLike, append_version: bool | None = None
    ) -> URL:
        """The URL of ``filename`` with ``?v=`` its served version (none for a missing file
        or when ``append_version`` is False)."""
        url = super().url_for(filename=filename, append_version=False)
        version = None if append_version is False else self.files.version(str(filename))
        return url if version is None else url.with_query({VERSION_KEY: version})


# The bundles named by the page being made whose recipes may not be published yet.
_NAMED: web.RequestKey[set[str]] = web.RequestKey("static_bundles_named")


def named(request: web.Request, files: StaticCopy, name: str) -> str:
    """Note that the page answering ``request`` names the bundle ``name``: its recipe is
    published before the page is sent (``publish_named``). Returns ``name``."""
    if name not in files.published:
        request.setdefault(_NAMED, set()).add(name)
    return name


async def publish_named(request: web.Request, response: web.StreamResponse) -> None:
    """Before a page's first byte leaves, record the recipes of the bundles it names that this
    instance made and has not recorded yet (rare: once per page kind and language), so the
    browser's request for one finds it on whichever instance it reaches."""
    names = request.get(_NAMED)
    resource = request.app.router.named_resources().get("static")
    pool = request.app.get(POOL)
    if not names or not isinstance(resource, VersionedStatic) or pool is None:
        return
    files = resource.files
    recipes = [r for n in sorted(names - files.published) if (r := files.recipe(n)) is not None]
    if not recipes:
        return
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            await bundle_recipes.publish(pool, recipes)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        # The page goes anyway (it answers from this instance's copy); the next page naming
        # the bundle tries again. Meanwhile another instance answers 404 for it.
        log.warning("recipes of %s not recorded", [r.name for r in recipes], exc_info=True)
        return
    files.published.update(r.name for r in recipes)


async def provide(request: web.Request, files: StaticCopy, name: str) -> None:
    """Make the bundle ``name`` that another instance named, from its published recipe; a
    name of no recipe makes nothing (one SELECT by primary key, none when it cannot be a
    bundle's name)."""
    pool = request.app.get(POOL)
    if pool is None:
        return
    recipe = await bundle_recipes.lookup(pool, name)
    if recipe is None:
        return
    if await asyncio.get_running_loop().run_in_executor(None, files.make, recipe):
        files.published.add(name)


def static_files(files: StaticCopy) -> Middleware:
    """The middleware for requests under /static (see the module's docstring)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PREFIX + "/"):
            return await handler(request)
        loop = asyncio.get_running_loop()
        if files.due():
            await loop.run_in_executor(None, files.refresh)
        name = request.match_info.get("filename", "")
        if name.startswith(BUNDLES + "/") and files.version(name, refresh=False) is None:
            await provide(request, files, name)
        response = await handler(request)
        accept = request.headers.get(hdrs.ACCEPT_ENCODING, "").lower()
        if isinstance(response, web.FileResponse) and "gzip" in accept and not accepts_gzip(
                accept):
            # The route sends the .gz sibling whenever the header names gzip, even refused
            # (``gzip;q=0``): answer such rare clients with the identity bytes ourselves.
            body = await loop.run_in_executor(None, files.read, name)
            if body is not None:
                response = web.Response(body=body)
        response.headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
        wanted = request.query.get(VERSION_KEY)
        served = files.version(name, refresh=False) if wanted else None
        response.headers[hdrs.CACHE_CONTROL] = (
            IMMUTABLE if wanted is not None and wanted == served else REVALIDATE)
        content_type = TEXT_TYPES.get(Path(name).suffix.lower())
        if content_type is not None and response.status in (200, 206):
            response.headers[hdrs.CONTENT_TYPE] = content_type
        return response

    return middleware


def setup(app: web.Application, directory: Path) -> None:
    """Serve a copy of ``directory`` under /static/ as the route named ``static``, every
    instance serving every bundle any instance's page names (server.bundle_recipes)."""
    files = StaticCopy(directory)
    app.router.register_resource(VersionedStatic(files, name="static"))
    app.middlewares.append(static_files(files))
    app.on_response_prepare.append(publish_named)
