"""The recipes of page bundles, shared through PostgreSQL so that any instance serves any bundle.

A page's script and stylesheet bundles (server.bundles) are made by the instance rendering the
page, on first asking, under a name the page prints. Behind a round-robin proxy the browser's
request for that name may reach another instance, which never rendered such a page. So the
instance that makes a bundle publishes its recipe (the name, the entries, the page's words:
public text, never a secret) in ``static_bundles`` before the page is sent, and an instance
asked for a name it does not hold reads the recipe and makes the same bundle from its own
sources (the same code gives the same bytes).

A script's name ends in a hash of its entries and words, which cannot be inverted; a
stylesheet's name could be, but making one for any name asked would let a client have
thousands of orderings of the stylesheets made and kept. Both kinds therefore come only from
published recipes: a name nobody published costs one SELECT by primary key and makes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg

# What a bundle's name can look like (server.static: ``bundles/<stems>.<hash>.js`` and
# ``bundles/<stem>+<stem>.css``); anything else is not looked up.
NAME = re.compile(r"bundles/[A-Za-z0-9_.+-]{1,160}\.(?:js|css)")

INSERT = """
INSERT INTO static_bundles (name, entries, strings) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (name) DO NOTHING
"""
SELECT = "SELECT entries, strings::text FROM static_bundles WHERE name = $1"


@dataclass(frozen=True)
class Recipe:
    """What a bundle is made of: ``entries`` (modules under js/ for a script, files under css/
    for a stylesheet, in order) and, for a script, the page's words."""

    name: str
    entries: tuple[str, ...]
    strings: Mapping[str, str] | None = None

    @property
    def is_script(self) -> bool:
        return self.name.endswith(".js")


async def publish(pool: asyncpg.Pool, recipes: Iterable[Recipe]) -> None:
    """Record ``recipes`` (a name already recorded is left as it is: same name, same recipe)."""
    rows = [(r.name, list(r.entries),
             None if r.strings is None else json.dumps(dict(r.strings), ensure_ascii=False,
                                                       sort_keys=True))
            for r in recipes]
    if rows:
        await pool.executemany(INSERT, rows)


async def lookup(pool: asyncpg.Pool, name: str) -> Recipe | None:
    """The recipe published under ``name``; None for a name of no bundle (not even looked up
    when it cannot be one)."""
    if not NAME.fullmatch(name):
        return None
    row = await pool.fetchrow(SELECT, name)
    if row is None:
        return None
    strings = None if row["strings"] is None else json.loads(row["strings"])
    return Recipe(name, tuple(row["entries"]), strings)
