"""One script and one stylesheet per page, made from the ES modules and CSS files at start-up.

On a slow mobile network a request costs a round trip (2 s on slow 3G) whatever its size, and
a browser opens at most 6 connections to a host: the call page's eleven modules and two
stylesheets took two rounds after the page itself. ``<link rel="modulepreload">`` lets every
module start in the first round, but it does not make them fewer: over HTTP/1.1 thirteen
requests still need three rounds of six. So the server joins them: a page names its entry
modules, and gets one versioned file holding them and everything they import, and one file
for its stylesheets. Developers keep editing plain modules (no build tool, no build step):
server.static makes the bundles beside its copy of web/static and makes them again when a
source changes.

How modules become one script without a tool: each module's body is wrapped in a function,
evaluated in the order the browser would evaluate it (depth first, imports in the order they
are written, each once), and returns an object of its exports; an ``import {a, b as c} from
'./x.js'`` becomes ``const {a, b: c} = <x's exports>``. That is ES module semantics for the
subset our modules use, which ``bundle`` checks and refuses otherwise (``BundleError``):
named imports and side-effect imports of relative ``.js`` paths, ``export`` in front of
``const``, ``function``, ``async function`` and ``class`` declarations; no ``export let`` (a
reassigned export would not be seen by importers), no default or re-exports, no dynamic
``import()``, no ``import.meta``, no import cycle. The bundle is itself a module (strict,
deferred, ``this`` undefined), so the code runs as it did.

A page's translated words can ride in its bundle (``strings``): i18n-client.js's
``addStrings`` is called with them right after that module is evaluated, before any module
that imports it. They are then cached with the scripts, per language, instead of crossing the
network inside every page (5.6 KB of the call page's 14 KB).
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The module that receives the words, and how.
STRINGS_MODULE = "i18n-client.js"
STRINGS_HOOK = "addStrings"
# The object holding every module's exports; no module of ours names anything like it.
REGISTRY = "casa$modules"

_IMPORT = re.compile(
    r"^import\s*(?:(\{[^}]*\})\s*from\s*)?(['\"])([^'\"]+)\2\s*;?[ \t]*$", re.M)
_ANY_IMPORT = re.compile(r"^\s*import\b", re.M)
_EXPORT = re.compile(r"^export\s+(const|async\s+function\*?|function\*?|class)\s+([\w$]+)",
                     re.M)
_ANY_EXPORT = re.compile(r"^\s*export\b", re.M)
_DYNAMIC = re.compile(r"\bimport\s*\(|\bimport\.meta\b")
_NAME = re.compile(r"[\w$]+")


class BundleError(ValueError):
    """A module uses a form the bundler does not translate, or an import it cannot find."""


@dataclass(frozen=True)
class Module:
    """A module as the bundler reads it: its imports (paths relative to the modules' root, in
    source order), the names it exports, and its source."""

    name: str
    imports: tuple[str, ...]
    exports: tuple[str, ...]
    source: str


def _resolve(importer: str, specifier: str) -> str:
    if not specifier.startswith(("./", "../")) or not specifier.endswith(".js"):
        raise BundleError(f"{importer}: only relative .js imports are bundled ({specifier})")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(importer), specifier))
    if resolved.startswith("../"):
        raise BundleError(f"{importer}: {specifier} is outside the modules")
    return resolved


def parse(name: str, source: str) -> Module:
    """Read ``source`` (the module at ``name``), refusing what ``bundle`` cannot translate."""
    imports = tuple(_resolve(name, m[3]) for m in _IMPORT.finditer(source))
    if len(_ANY_IMPORT.findall(source)) != len(imports):
        raise BundleError(f"{name}: an import the bundler does not translate (named or bare "
                          "imports of relative .js paths only, one per statement)")
    if _DYNAMIC.search(source):
        raise BundleError(f"{name}: dynamic import() or import.meta")
    exports = tuple(m[2] for m in _EXPORT.finditer(source))
    if len(_ANY_EXPORT.findall(source)) != len(exports):
        raise BundleError(f"{name}: an export the bundler does not translate (export const, "
                          "function, async function or class only)")
    return Module(name, imports, exports, source)


def graph(entries: Iterable[str], sources: Mapping[str, str]) -> list[str]:
    """The modules ``entries`` reach, in the order a browser evaluates them (depth first,
    imports in source order, each once); an import cycle or a missing module is refused."""
    order: list[str] = []
    active: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in active:
            raise BundleError("import cycle: " + " -> ".join([*active, name]))
        if name not in sources:
            raise BundleError(f"no module {name}")
        active.append(name)
        for dep in parse(name, sources[name]).imports:
            visit(dep)
        active.pop()
        order.append(name)

    for entry in entries:
        visit(entry)
    return order


def _import_line(m: re.Match[str], importer: str) -> str:
    target = json.dumps(_resolve(importer, m[3]))
    if not m[1]:
        return ""  # evaluated already, in order
    bindings = []
    for item in m[1].strip("{} \n\t").split(","):
        parts = item.split()
        if not parts:
            continue
        if len(parts) == 3 and parts[1] == "as":
            bindings.append(f"{parts[0]}: {parts[2]}")
        elif len(parts) == 1 and _NAME.fullmatch(parts[0]):
            bindings.append(parts[0])
        else:
            raise BundleError(f"{importer}: cannot read the import {m[0]!r}")
    # The statement keeps its line count, so a line in the bundle is easy to find in the module.
    pad = "\n" * m[0].count("\n")
    return f"const {{ {', '.join(bindings)} }} = {REGISTRY}[{target}];{pad}"


_COMMENT_LINE = re.compile(r"^[ \t]*//.*\n", re.M)


def without_comment_lines(source: str) -> str:
    """``source`` without its whole-line ``//`` comments (a third of our modules' bytes, a
    quarter of the call page's script once compressed: 6 KB, 0.12 s on slow 3G). Such a line
    could be text only inside a template literal running over several lines (a quoted string
    or a regular expression cannot, without a trailing backslash): when any line of code has an
    odd number of backticks, or one ends in a backslash, the source is left as it is."""
    for line in source.splitlines():
        if _COMMENT_LINE.match(line + "\n"):
            continue
        if line.count("`") % 2 or line.rstrip().endswith("\\"):
            return source
    return _COMMENT_LINE.sub("", source)


def _strings_js(strings: Mapping[str, str]) -> str:
    text = json.dumps(dict(strings), ensure_ascii=False, sort_keys=True)
    # Valid in JSON, not in the string literals of older JavaScript engines.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def bundle(entries: Iterable[str], sources: Mapping[str, str],
           strings: Mapping[str, str] | None = None) -> str:
    """One module with ``entries`` and what they import, in evaluation order; ``strings``
    (the page's words) handed to i18n-client.js as soon as it is evaluated."""
    entries = tuple(entries)
    order = graph(entries, sources)
    if strings is not None and STRINGS_MODULE not in order:
        raise BundleError(f"words given to a bundle without {STRINGS_MODULE}")
    parts = [f"// Casa: {', '.join(entries)} with what they import (server/bundles.py).\n"
             f"const {REGISTRY} = Object.create(null);\n"]
    for name in order:
        module = parse(name, sources[name])
        body = _IMPORT.sub(functools.partial(_import_line, importer=name),
                           without_comment_lines(module.source))
        body = _EXPORT.sub(lambda m: f"{m[1]} {m[2]}", body)
        parts.append(f"// --- {name}\n{REGISTRY}[{json.dumps(name)}] = (() => {{\n{body}\n"
                     f"return {{ {', '.join(module.exports)} }};\n}})();\n")
        if name == STRINGS_MODULE and strings is not None:
            parts.append(f"{REGISTRY}[{json.dumps(name)}].{STRINGS_HOOK}"
                         f"({_strings_js(strings)});\n")
    return "".join(parts)


def stylesheet(names: Iterable[str], sources: Mapping[str, str]) -> str:
    """The stylesheets ``names`` as one, in order (the cascade is the order of the files).
    Our CSS has no ``@import`` and no relative ``url()``, which would change meaning here."""
    parts = []
    for name in names:
        if name not in sources:
            raise BundleError(f"no stylesheet {name}")
        css = sources[name]
        if re.search(r"@import\b|url\(\s*['\"]?(?!data:|#)", css):
            raise BundleError(f"{name}: @import or url() would change meaning in a bundle")
        parts.append(f"/* --- {name} */\n{css}\n")
    return "".join(parts)
