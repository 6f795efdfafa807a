"""Versioned ES module imports without a build step.

Templates link scripts by versioned URL (``/static/js/call.js?v=...``), but modules import
each other by relative URL (``./i18n-client.js``), which could not be cached for long: a
patient's phone had to revalidate every module on every visit, one 2-second round trip on a
slow mobile network. So the server rewrites the relative import specifiers of the modules it
serves to carry a version too (``./i18n-client.js?v=...``), and every module URL it prints
(templates' ``static()``, ``<link rel="modulepreload">``) carries the same one.

The version is one for all modules: the hash of every module's path and bytes. A module's
served bytes name its imports' URLs, so a change in any module must change the URL of every
module that reaches it; with import cycles allowed, one shared version is the simple correct
choice (a change re-downloads all modules once, ~20 KiB gzipped). The URLs stay same-origin,
so the CSP (script-src 'self') is untouched; no inline import map is needed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from pathlib import Path

# `from './x.js'`, `import './x.js'`, `import('./x.js')`, `export ... from '../x.js'`:
# relative specifiers only, without a query already.
IMPORT_RE = re.compile(rb"""(\b(?:from|import)\s*\(?\s*)(['"])(\.\.?/[^'"?#\s]+\.js)\2""")
Stamp = tuple[tuple[str, int, int, int, int], ...]


class ModuleVersion:
    """The shared version of the ``*.js`` files under ``root``, re-hashed when one changes."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._cached: tuple[Stamp, str] | None = None

    def current(self) -> str:
        """The version now (stat of every module each call: a dozen files, microseconds).
        A module deleted or unreadable meanwhile is left out rather than failing the page."""
        files: list[tuple[str, Path]] = []
        stamps = []
        for p in sorted(self._root.rglob("*.js")):
            try:
                st = p.stat()
            except OSError:
                continue
            name = str(p.relative_to(self._root))
            files.append((name, p))
            stamps.append((name, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        stamp: Stamp = tuple(stamps)
        with self._lock:
            if self._cached is not None and self._cached[0] == stamp:
                return self._cached[1]
        digest = hashlib.sha256()
        for name, p in files:
            try:
                body = p.read_bytes()
            except OSError:
                continue
            digest.update(name.encode() + b"\0" + body + b"\0")
        # No "=" padding: yarl would print it as %3D in templates' URLs while the import
        # specifier keeps it raw, and the browser would see two URLs (two fetches).
        version = base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")
        with self._lock:
            self._cached = (stamp, version)
        return version


def rewrite_imports(source: bytes, version: str, key: str = "v") -> bytes:
    """``source`` with each relative ``.js`` import specifier given ``?key=version``."""
    suffix = f"?{key}={version}".encode()
    return IMPORT_RE.sub(lambda m: m[1] + m[2] + m[3] + suffix + m[2], source)
