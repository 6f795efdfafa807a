"""Static files under /static: gzip for text assets, and caching that matches the URL.

Patients often open Casa on old phones over poor mobile networks, so the scripts and styles
should cross the network once, compressed. aiohttp's own static resource routes the URL,
refuses paths outside the directory and builds versioned URLs (``?v=<sha256>``, what the
templates' ``static()`` prints); this subclass only changes how a matched file is answered:

- ES modules' relative imports are rewritten to carry a version (server.static_modules), so
  every module URL a page uses is versioned and cacheable for a year.
- Text assets (JS, CSS, SVG, JSON) are read into memory, keyed by the file's stat, so a file
  changed on disk is re-read and re-compressed on its next request (no stale copy, no cache
  directory, nothing generated in the repository). Clients that accept gzip get the gzip
  bytes; all of them get ``Vary: Accept-Encoding``. The ETag is the content's hash (another
  one for the gzip form) and If-None-Match / If-Modified-Since answer 304.
- Other files (the chime, images) go to aiohttp's FileResponse, which handles byte ranges
  (iOS Safari plays audio only from a server that does).
- A URL whose ``v`` is the file's current hash is cached for a year, ``immutable``; any other
  URL (the relative imports between ES modules, or an old version) must revalidate
  (``no-cache``), which costs a 304 and no body.

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
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.typedefs import PathLike
from yarl import URL

from server.static_modules import ModuleVersion, rewrite_imports

# Compressed and served from memory; everything else is streamed by FileResponse.
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


@dataclass(frozen=True)
class Asset:
    """One file as last read. ``body`` and ``gzipped`` only for text assets (``gzipped`` is
    None when not smaller); other files are streamed from disk."""

    stamp: tuple[object, ...]
    version: str
    etag: str
    mtime: float | None  # None for ES modules: their bytes change with other files
    body: bytes | None = None
    gzipped: bytes | None = None


def version_of(body: bytes) -> str:
    """The ``v`` query aiohttp's StaticResource.url_for appends: urlsafe base64 sha256."""
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


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): ``*`` or any listed tag equal without ``W/``."""
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


class CompressedStatic(web.StaticResource):
    """aiohttp's static resource (routing, traversal checks, versioned URLs) with gzip and
    version-aware Cache-Control."""

    def __init__(self, prefix: str, directory: Path, *, name: str) -> None:
        super().__init__(prefix, directory, name=name, append_version=True)
        self._root = Path(directory).resolve(strict=True)
        self._assets: dict[Path, Asset] = {}
        self._modules = ModuleVersion(self._root)

    def url_for(  # type: ignore[override]
        self, *, filename: PathLike, append_version: bool | None = None
    ) -> URL:
        """aiohttp's URL (``?v=`` the file's hash); for ES modules ``?v=`` the modules' shared
        version, the one their rewritten imports carry (server.static_modules)."""
        module = str(filename).endswith(".js")
        versioned = self._append_version if append_version is None else append_version
        # Not super()'s version for modules: it would read and hash the file for nothing.
        url = super().url_for(filename=filename, append_version=versioned and not module)
        if module and versioned and (self._root / str(filename).lstrip("/")).is_file():
            url = url.with_query({self.VERSION_KEY: self._modules.current()})
        return url

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        filename = request.match_info["filename"]
        loop = asyncio.get_running_loop()
        path, asset = await loop.run_in_executor(None, self._lookup, filename)
        if asset.body is None:
            # FileResponse answers ranges, 304s and HEAD itself; it keeps our headers.
            cache = self._cache_control(request, asset.version)
            return web.FileResponse(path, headers={hdrs.CACHE_CONTROL: cache})
        return self._respond(request, path, asset)

    def _lookup(self, filename: str) -> tuple[Path, Asset]:
        """The regular file under the root that ``filename`` names (or 404) and its asset,
        re-read when its stat changed. Symlinks are not followed out of the root and
        directories are not listed. Runs in a thread: it touches the disk."""
        if not filename or Path(filename).is_absolute() or "\x00" in filename:
            raise web.HTTPNotFound()
        try:
            path = self._root.joinpath(filename).resolve()
            path.relative_to(self._root)
            st = path.stat()
        except (ValueError, OSError, RuntimeError) as error:
            raise web.HTTPNotFound() from error
        if not stat.S_ISREG(st.st_mode):
            raise web.HTTPNotFound()
        module = path.suffix == ".js"
        modules_version = self._modules.current() if module else ""
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, modules_version)
        cached = self._assets.get(path)
        if cached is not None and cached.stamp == stamp:
            return path, cached
        try:
            body = path.read_bytes()
        except OSError as error:
            raise web.HTTPNotFound() from error
        version = version_of(body)
        if module:
            body = rewrite_imports(body, modules_version, self.VERSION_KEY)
            version = modules_version
        digest = hashlib.sha256(body).hexdigest()[:32]
        asset = Asset(stamp=stamp, version=version, etag=f'"{digest}"',
                      mtime=None if module else st.st_mtime)
        if path.suffix.lower() in TEXT_TYPES:
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            small = len(body) < MIN_COMPRESS_BYTES or len(packed) >= len(body)
            asset = replace(asset, body=body, gzipped=None if small else packed)
        self._assets[path] = asset
        return path, asset

    def _respond(self, request: web.Request, path: Path, asset: Asset) -> web.StreamResponse:
        gzipped = asset.gzipped is not None and accepts_gzip(
            request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        etag = asset.etag[:-1] + '-gz"' if gzipped else asset.etag
        headers = {hdrs.CACHE_CONTROL: self._cache_control(request, asset.version),
                   hdrs.VARY: hdrs.ACCEPT_ENCODING, hdrs.ETAG: etag}
        if self._not_modified(request, etag, asset.mtime):
            response = web.Response(status=304, headers=headers)
            if asset.mtime is not None:
                response.last_modified = asset.mtime
            return response
        body = asset.body
        if gzipped:
            headers[hdrs.CONTENT_ENCODING] = "gzip"
            body = asset.gzipped
        response = web.Response(body=body, headers=headers)
        response.content_type, _, charset = TEXT_TYPES[path.suffix.lower()].partition(
            "; charset=")
        if charset:
            response.charset = charset
        if asset.mtime is not None:
            response.last_modified = asset.mtime
        return response

    @staticmethod
    def _not_modified(request: web.Request, etag: str, mtime: float | None) -> bool:
        if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
        if if_none_match is not None:
            return _etag_matches(if_none_match, etag)
        since = request.if_modified_since
        return since is not None and mtime is not None and int(mtime) <= since.timestamp()

    def _cache_control(self, request: web.Request, version: str) -> str:
        """A year only when the URL names the content actually served."""
        wanted = request.query.get(self.VERSION_KEY)
        return IMMUTABLE if wanted == version else REVALIDATE


def setup(app: web.Application, directory: Path) -> None:
    """Serve ``directory`` under /static/ as the route named ``static``."""
    app.router.register_resource(CompressedStatic("/static", directory, name="static"))
