"""The shape of the code: the consultation's shared facts (statuses, the patient cookie, the
languages) spelt out in one place, ``server/consultations``. (Import cycles and borrowed
private names: ``tests/test_imports.py``.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from server.consultations import credentials, languages, status
from tests.test_imports import import_graph

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "signaling", "records", "web")
CORE = ROOT / "server" / "consultations"


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _outside_core() -> list[Path]:
    return [p for p in _modules().values() if CORE not in p.parents]


def _collections(tree: ast.AST) -> list[set[str]]:
    """The string constants of every tuple, list, set or dict literal (dict keys included)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            elts = [k for k in node.keys if k is not None]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            elts = node.elts
        else:
            continue
        out.append({e.value for e in elts if isinstance(e, ast.Constant)
                    and isinstance(e.value, str)})
    return out


# msgspec checks ``hello.lang`` against a static ``Literal``, which cannot be built from a
# runtime value: checked equal to the core's list below instead. The demo's patients speak a
# mix of languages: data, each checked against the core's list when the patient is made.
LANGUAGE_LITERAL_ALLOWED = {ROOT / "signaling" / "messages.py", ROOT / "server" / "demo.py"}
# The sets the core names; a package may have a set of its own meaning (the statuses its API
# offers, those a calendar leaves out), not a copy of one of these.
NAMED_SETS = {"VOID": status.VOID, "CALLED_OFF": status.CALLED_OFF,
              "CLOSED_TO_JOINING": status.CLOSED_TO_JOINING, "LIVE": status.LIVE,
              "RESCHEDULABLE": status.RESCHEDULABLE}
SQL_STATUS_LIST = re.compile(r"IN \(((?:\s*'[a-z-]+'\s*,?)+)\)")


def _copied_set(strings: set[str]) -> str | None:
    return next((name for name, named in NAMED_SETS.items() if strings == named), None)
TEMPLATE_LANGUAGES = re.compile(r"""\(\s*["']it["']\s*,\s*["']en["']""")


def test_shared_literals_are_declared_only_in_the_core() -> None:
    found = []
    for path in _outside_core():
        text = path.read_text()
        where = path.relative_to(ROOT)
        if f'"{credentials.PATIENT_COOKIE}"' in text or f"'{credentials.PATIENT_COOKIE}'" in text:
            found.append(f"{where}: the patient cookie's name")
        for listed in SQL_STATUS_LIST.findall(text):
            if name := _copied_set(set(re.findall(r"'([a-z-]+)'", listed))):
                found.append(f"{where}: status.{name} spelt out in SQL")
        for strings in _collections(ast.parse(text)):
            if name := _copied_set(strings):
                found.append(f"{where}: status.{name} spelt out")
            if {"it", "en"} <= strings and path not in LANGUAGE_LITERAL_ALLOWED:
                found.append(f"{where}: a list of languages")
    for template in (ROOT / "web" / "templates").rglob("*.html"):
        if TEMPLATE_LANGUAGES.search(template.read_text()):
            found.append(f"{template.relative_to(ROOT)}: a list of languages")
    assert found == []


def test_the_finder_sees_each_kind_of_copy() -> None:
    tree = ast.parse('X = frozenset({"noshow", "cancelled", "entered-in-error"})\n'
                     'L = {"it": "I", "en": "E"}\n')
    sets = _collections(tree)
    assert {_copied_set(s) for s in sets} == {"CALLED_OFF", None}
    assert any({"it", "en"} <= s for s in sets)
    listed = SQL_STATUS_LIST.findall("AND b.status NOT IN ('cancelled', 'entered-in-error')")
    assert _copied_set(set(re.findall(r"'([a-z-]+)'", listed[0]))) == "VOID"
    assert TEMPLATE_LANGUAGES.search('{% for code in ("it", "en", "ar") %}')


def test_the_wire_accepts_exactly_casas_languages() -> None:
    from typing import get_args, get_type_hints

    from signaling.messages import Hello

    literal, none = get_args(get_type_hints(Hello)["lang"])
    assert none is type(None)
    assert get_args(literal) == tuple(languages.UI_LANGUAGES)


def test_the_status_sets_mean_what_their_names_say() -> None:
    assert status.VOID < status.CALLED_OFF < status.CLOSED_TO_JOINING
    assert status.CLOSED_TO_JOINING - status.CALLED_OFF == {"fulfilled"}
    # Nothing called off or closed can still move into a live booking.
    for s in status.CLOSED_TO_JOINING:
        assert status.TRANSITIONS[s] == frozenset()
    assert set(languages.UI_LANGUAGES) < set(languages.SPOKEN_LANGUAGES)


def test_the_precall_endpoints_have_one_owner() -> None:
    """``/api/v1/precall/*`` is signalling's alone; the call pages do not import signalling."""
    graph = import_graph(PACKAGES)
    calls = [name for name in graph if name.startswith("server.calls")]
    assert calls and not any(m.startswith("signaling") for name in calls for m in graph[name])
    owners: dict[str, set[str]] = {}
    for name, path in _modules().items():
        for route in re.findall(r'"(/precall/[^"]*)"', path.read_text()):
            owners.setdefault(route, set()).add(name)
    assert set(owners) == {"/precall/offer", "/precall/{id}/report", "/precall/ice-servers"}
    assert set().union(*owners.values()) == {"signaling.echo"}
