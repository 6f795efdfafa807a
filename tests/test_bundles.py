"""server.bundles: ES modules joined into one script without a tool, stylesheets into one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from server.app import STATIC_DIR
from server.bundles import BundleError, bundle, graph, stylesheet, without_comment_lines
from server.static import StaticCopy

MODULES = {
    "a.js": "import './log.js';\nimport { b, shout as loud } from './b.js';\n"
            "import { log } from './log.js';\nlog('a ' + b + ' ' + loud('x'));\n"
            "export const a = 1;\n",
    "b.js": "import { log } from './log.js';\nconst local = 'b';\nlog(local);\n"
            "export const b = local;\nexport function shout(s) { return s.toUpperCase(); }\n",
    "log.js": "export const lines = [];\nexport function log(s) { lines.push(s); }\n"
              "log('log');\n",
    "i18n-client.js": "const strings = {};\nexport function addStrings(m) {"
                      " Object.assign(strings, m); }\nexport function t(k) {"
                      " return strings[k] ?? k; }\n",
    "words.js": "import { t } from './i18n-client.js';\nimport { log } from './log.js';\n"
                "log(t('hello'));\n",
}


def _run(script: str) -> list[str]:
    """Evaluate ``script`` as an ES module in Node; returns the log's lines."""
    source = script + "\nconsole.log(JSON.stringify(casa$modules['log.js'].lines));\n"
    out = subprocess.run(["node", "--input-type=module", "-e", source], check=True,
                         capture_output=True, text=True, timeout=30)
    return list(json.loads(out.stdout))


def test_modules_run_once_in_the_browsers_order_with_their_bindings() -> None:
    assert graph(["a.js"], MODULES) == ["log.js", "b.js", "a.js"]
    assert _run(bundle(["a.js"], MODULES)) == ["log", "b", "a b X"]


def test_words_reach_i18n_client_before_a_module_that_uses_them() -> None:
    lines = _run(bundle(["words.js"], MODULES, {"hello": "ciao \u2028 «tutti»"}))
    assert lines == ["log", "ciao \u2028 «tutti»"]


def test_names_of_two_modules_do_not_clash() -> None:
    modules = {"log.js": MODULES["log.js"],
               "x.js": "import { log } from './log.js';\nconst name = 'x';\nlog(name);\n",
               "y.js": "import { log } from './log.js';\nconst name = 'y';\nlog(name);\n"}
    assert _run(bundle(["x.js", "y.js"], modules)) == ["log", "x", "y"]


@pytest.mark.parametrize("source", [
    "import x from './log.js';\n",
    "import * as all from './log.js';\n",
    "export default 1;\n",
    "export let counter = 0;\n",
    "export { a } from './a.js';\n",
    "const m = import('./log.js');\n",
    "console.log(import.meta.url);\n",
    "import { a } from 'https://elsewhere.example/a.js';\n",
])
def test_forms_the_bundler_cannot_translate_are_refused(source: str) -> None:
    with pytest.raises(BundleError):
        bundle(["z.js"], {**MODULES, "z.js": source})


def test_a_cycle_and_a_missing_module_are_refused() -> None:
    with pytest.raises(BundleError, match="cycle"):
        graph(["p.js"], {"p.js": "import './q.js';\n", "q.js": "import './p.js';\n"})
    with pytest.raises(BundleError, match="no module"):
        graph(["p.js"], {"p.js": "import './gone.js';\n"})
    with pytest.raises(BundleError, match="i18n-client"):
        bundle(["log.js"], MODULES, {"hello": "ciao"})


def test_stylesheets_join_in_order_and_refuse_relative_urls() -> None:
    css = {"one.css": "a { color: red; }", "two.css": "a { color: blue; }"}
    joined = stylesheet(["one.css", "two.css"], css)
    assert joined.index("red") < joined.index("blue")
    with pytest.raises(BundleError):
        stylesheet(["bad.css"], {"bad.css": "a { background: url(img.png); }"})


def test_every_module_of_ours_is_bundled_and_parses(tmp_path: Path) -> None:
    """Each module of web/static/js, bundled with what it imports, is valid JavaScript."""
    sources = {p.name: p.read_text() for p in (STATIC_DIR / "js").glob("*.js")}
    for name in sorted(sources):
        script = tmp_path / f"{name}.mjs"
        script.write_text(bundle([name], sources))
        subprocess.run(["node", "--check", str(script)], check=True, timeout=30)


def test_a_bundle_follows_its_sources(tmp_path: Path) -> None:
    """An edited module is in its page's bundle at the next look, under a new version."""
    root = tmp_path / "static"
    (root / "js").mkdir(parents=True)
    for name, text in MODULES.items():
        (root / "js" / name).write_text(text)
    now = [0.0]
    (tmp_path / "copy").mkdir()
    files = StaticCopy(root, tmp_path / "copy", interval_s=1.0, clock=lambda: now[0])
    name = files.scripts(("a.js",))
    before = files.version(name)
    (root / "js" / "b.js").write_text(MODULES["b.js"].replace("'b'", "'B'"))
    now[0] += 2
    assert files.scripts(("a.js",)) == name and files.version(name) != before
    body = files.read(name)
    assert body is not None and b"'B'" in body


def test_whole_line_comments_go_but_never_text_of_a_template_literal() -> None:
    assert without_comment_lines("const a = 1;\n  // gone\nconst b = '// kept';\n") == \
        "const a = 1;\nconst b = '// kept';\n"
    for kept in ("const a = `x\n// text of the literal\n`;\n// a comment\n",
                 "const a = 'x\\\n// continued string';\n"):
        assert without_comment_lines(kept) == kept
    script = bundle(["t.js"], {**MODULES, "t.js": "import { log } from './log.js';\n"
                               "// a comment\nlog(`one\n// two`);\n"})
    assert _run(script) == ["log", "one\n// two"]
