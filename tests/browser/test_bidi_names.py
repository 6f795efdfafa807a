"""A name holding a right-to-left override (stored before names were checked, or typed by a
guest's inviter elsewhere) reverses nothing around it: every name is shown isolated, in the
server's pages (``<bdi>``) and in what the scripts build (``<bdi>``, isolated placeholders).

Measured as the browser lays it out: the letters of the first word after the name must run
left to right on screen, as they do in an Italian or English sentence."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg

from tests.browser.conftest import Visit, open_page, sign_in
from tests.browser.test_call import LAPTOP, patient_in_waiting_room

RLO = "\u202e"

# The left edges of the letters of the first word (4+ Latin letters) after the override.
WORD_AFTER_NAME = """(sel) => {
  const root = document.querySelector(sel);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let seen = false;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    let from = 0;
    if (!seen) {
      const at = node.data.indexOf('\\u202e');
      if (at < 0) continue;
      seen = true;
      from = at + 1;
    }
    const m = /[A-Za-z]{4,}/.exec(node.data.slice(from));
    if (!m) continue;
    const xs = [];
    for (let i = from + m.index; i < from + m.index + m[0].length; i++) {
      const r = document.createRange();
      r.setStart(node, i);
      r.setEnd(node, i + 1);
      xs.push(r.getBoundingClientRect().left);
    }
    return { word: m[0], xs };
  }
  return null;
}"""


def left_to_right(found: Any) -> bool:
    xs = found["xs"]
    return all(a < b for a, b in itertools.pairwise(xs))


async def test_a_name_with_an_override_reverses_nothing_around_it(
        live: str, visit: Visit, browser: Any, conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE patients SET family_name = family_name || $1", RLO)
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, visit.gp_email)
    # The script's sentence: the dashboard's "Maria Bianchi<RLO> è in attesa" when she
    # arrives (the doctor's account reads Italian).
    await doc.page.goto(f"{live}/dashboard")
    await doc.page.wait_for_selector("#consultations li")
    patient = await patient_in_waiting_room(browser, live, visit)
    await doc.page.wait_for_selector("#waiting-alert:not([hidden])")
    alert = await doc.page.evaluate(WORD_AFTER_NAME, "#waiting-alert")
    assert alert is not None and alert["word"] == "attesa" and left_to_right(alert), alert
    # The server's page: "Patient: Maria Bianchi<RLO> · 10:05 · Casa ..." on the call page.
    await doc.page.goto(f"{live}/consultation/{visit.room}")
    await doc.page.wait_for_selector("#stage-precall:not([hidden])")
    lead = await doc.page.evaluate(WORD_AFTER_NAME, "#stage-precall .lead")
    assert lead is not None and lead["word"] == "Casa" and left_to_right(lead), lead
    doc.assert_clean()
    patient.assert_clean()
