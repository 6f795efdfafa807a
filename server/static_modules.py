"""Versioned ES module imports without a build step.

Templates link scripts by versioned URL (``/static/js/call.js?v=...``), but modules import
each other by relative URL (``./i18n-client.js``), which could not be cached for long: a
patient's phone had to revalidate every module on every visit, one 2-second round trip on a
slow mobile network. So the served copy of each module (server.static) has its relative import
specifiers rewritten to carry a version too (``./i18n-client.js?v=...``), and every module URL
the server prints (templates' ``static()``, ``<link rel="modulepreload">``) carries the same one.

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
from collections.abc import Mapping

# `from './x.js'`, `import './x.js'`, `import('./x.js')`, `export ... from '../x.js'`:
# relative specifiers only, without a query already.
IMPORT_RE = re.compile(rb"""(\b(?:from|import)\s*\(?\s*)(['"])(\.\.?/[^'"?#\s]+\.js)\2""")


def modules_version(modules: Mapping[str, bytes]) -> str:
    """The shared version of ``modules`` (relative path to source bytes)."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + modules[name] + b"\0")
    # No "=" padding: yarl would print it as %3D in templates' URLs while the import
    # specifier keeps it raw, and the browser would see two URLs (two fetches).
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")


def rewrite_imports(source: bytes, version: str, key: str = "v") -> bytes:
    """``source`` with each relative ``.js`` import specifier given ``?key=version``."""
    suffix = f"?{key}={version}".encode()
    return IMPORT_RE.sub(lambda m: m[1] + m[2] + m[3] + suffix + m[2], source)
