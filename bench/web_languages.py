"""Page weight per language: what a phone's first visit to the join page, the pre-call check
and the call page costs in each of Casa's patient languages (fonts included), against Italian.

    python -m bench.web_languages

Starts Casa on 127.0.0.1 against a scratch database (DATABASE_URL, or an embedded PostgreSQL)
and opens each page in a fresh context (an empty cache: a first visit) of Debian's headless
Chromium at 360 px. Counts every response body as decoded (by resource type, so a web font
would show as "font") and every byte on the wire (Chromium's encodedDataLength). The call page
is reached as a patient does, through the invitation link of a patient who speaks the language.
The budget: no language may add more than 10 KB to a first visit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import async_playwright

from bench.web_pages import Load, book, measure_load, print_line, scratch_config, serve
from server.consultations.languages import PATIENT_LANGUAGES
from tests.browser.conftest import PHONE
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.pg import TestDatabases

BUDGET_BYTES = 10_000
PRECALL = "#stage-precall:not([hidden])"


async def main(dbs: TestDatabases) -> None:
    results: dict[str, dict[str, Load]] = {}
    async with scratch_config(dbs, "casa-bench-lang-") as (config, db), async_playwright() as p:
        runner, base = await serve(config, baseline=False)
        browser: Any = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for lang in PATIENT_LANGUAGES:
            results[lang] = {}
            for page, (path, ready) in {
                    "join": (f"/join?lang={lang}", "#code"),
                    "pre-call": (f"/precall?lang={lang}", "#precall-app"),
                    "call": (None, PRECALL)}.items():
                context = await browser.new_context(
                    viewport=PHONE, permissions=["camera", "microphone"])
                url = base + path if path else \
                    f"{base}/join/{await book(db, lang)}?lang={lang}"
                results[lang][page] = await measure_load(context, url, ready, conditions=None)
                await context.close()
        await browser.close()
        await runner.cleanup()
    _report(results)


def _report(results: dict[str, dict[str, Load]]) -> None:
    italian = results["it"]
    worst = 0
    for lang, pages in results.items():
        for page, load in pages.items():
            decoded = sum(load.decoded.values())
            fonts = load.decoded.get("font", 0)
            added = load.wire - italian[page].wire
            worst = max(worst, added)
            print_line(f"{lang} {page}: bytes on the wire (requests), decoded, fonts",
                  f"{load.wire} ({load.requests}), {decoded}, {fonts}; "
                  f"{added:+d} vs it")
    print_line("most any language adds to a first visit (bytes on the wire)",
          f"{worst} (budget {BUDGET_BYTES}: {'met' if worst <= BUDGET_BYTES else 'MISSED'})")


if __name__ == "__main__":
    databases = TestDatabases()
    try:
        asyncio.run(main(databases))
    finally:
        databases.close()
