"""The call's chat and live regions in Chromium: the sender sees their own line once, with its
state (sending, sent, not sent and sent again), whatever becomes of the socket; and what a
screen reader is told, read from Chromium's accessibility tree: admitted, a message while the
chat is closed (and how many), a message not sent, reconnecting. Every live region is in the
tree, empty, before its words appear."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.axtree import empty_live_region, page_strings, says
from tests.browser.conftest import LiveServer, Visit, Watched, open_page
from tests.browser.test_waiting_room import clinician_in_call

# call-controls.js's ANSWER_MS, and a second more.
PAST_ANSWER_MS = 11_000


class Socket:
    """The patient's signalling socket, passed through Playwright: the server's `chat_sent`
    answers can be held back (a slow or lost answer), and the connection cut as a network
    would cut it."""

    def __init__(self) -> None:
        self.hold = False
        self.held: list[str | bytes] = []
        self.route: Any = None
        self.server: Any = None

    async def handler(self, route: Any) -> None:
        server = route.connect_to_server()
        self.route, self.server = route, server

        def down(message: str | bytes) -> None:
            if self.hold and isinstance(message, str) and '"type":"chat_sent"' in message:
                self.held.append(message)
            else:
                route.send(message)

        server.on_message(down)

    def release(self) -> None:
        self.hold = False
        for message in self.held:
            self.route.send(message)
        self.held.clear()

    async def cut(self) -> None:
        await self.server.close()
        await self.route.close()


def said(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace(f"%({name})s", value)
    return template


async def own_line(w: Watched, text: str, state: str) -> None:
    """Exactly one line of ours with this text, in this state."""
    await w.page.wait_for_selector(
        f"#chat-log li[data-mine][data-state={state}]:has-text({text!r})", state="attached")
    assert await w.page.locator(f"#chat-log li[data-mine]:has-text({text!r})").count() == 1


async def doctor_has(doc: Watched, text: str) -> None:
    await doc.page.wait_for_selector(f"#chat-log li:has-text({text!r})", state="attached")


async def test_own_lines_once_with_their_state_and_every_announcement(
        live_server: LiveServer, visit: Visit, browser: Any) -> None:
    live = live_server.url
    patient = await open_page(browser)
    sock = Socket()
    await patient.page.route_web_socket(re.compile(r"/ws$"), sock.handler)
    await patient.page.clock.install()
    await patient.page.goto(f"{live}/join/{visit.link}")
    await patient.page.wait_for_url(f"**/consultation/{visit.room}")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    words = await page_strings(patient.page)
    for region in ("#status", "#live-chat", "#live-connection"):
        await empty_live_region(patient.page, region)

    # Admitted: said in the status region that was there, empty, all along.
    doc = await clinician_in_call(browser, live, visit)
    await doc.page.click("#waiting-list li.waiting button.admit")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await says(patient.page, "#status", words["admitted"])

    # The clinician writes while the patient's chat is closed: announced by name, then how
    # many; the clinician's own lines are on their screen once, sent.
    await empty_live_region(patient.page, "#live-chat")
    await doc.page.click("#btn-chat")
    await doc.page.fill("#chat-text", "Buongiorno")
    await doc.page.press("#chat-text", "Enter")
    await says(patient.page, "#live-chat", said(words["chat_new_from"], name=visit.gp_name))
    await doc.page.fill("#chat-text", "Come sta?")
    await doc.page.press("#chat-text", "Enter")
    await says(patient.page, "#live-chat", said(words["chat_new_count"], count="2"))
    await own_line(doc, "Buongiorno", "sent")
    await own_line(doc, "Come sta?", "sent")
    doc_words = await page_strings(doc.page)
    assert doc_words["chat_sent"] in await doc.page.inner_text(
        "#chat-log li[data-mine]:has-text('Buongiorno')")
    # Opening the chat shows both and empties the region (the next message is a change).
    await patient.page.click("#btn-chat")
    assert await patient.page.locator("#chat-log li").count() == 2
    await says(patient.page, "#live-chat", "")

    # The patient's line: on screen at once as sending, sent when the server answers.
    sock.hold = True
    await patient.page.fill("#chat-text", "Grazie")
    await patient.page.press("#chat-text", "Enter")
    await own_line(patient, "Grazie", "sending")
    assert words["chat_sending"] in await patient.page.inner_text("#chat-log li[data-mine]")
    await doctor_has(doc, "Grazie")
    sock.release()
    await own_line(patient, "Grazie", "sent")
    assert words["chat_sent"] in await patient.page.inner_text("#chat-log li[data-mine]")

    # No answer within the time allowed: not sent, with a retry, and said so; an answer that
    # comes after all marks it sent.
    sock.hold = True
    await patient.page.fill("#chat-text", "Tutto bene")
    await patient.page.press("#chat-text", "Enter")
    await own_line(patient, "Tutto bene", "sending")
    await doctor_has(doc, "Tutto bene")
    await patient.page.clock.fast_forward(PAST_ANSWER_MS)
    await own_line(patient, "Tutto bene", "failed")
    line = "#chat-log li[data-mine]:has-text('Tutto bene')"
    assert words["chat_not_sent"] in await patient.page.inner_text(line)
    assert await patient.page.is_visible(f"{line} .chat-retry")
    await says(patient.page, "#live-chat", words["chat_failed"])
    sock.release()
    await own_line(patient, "Tutto bene", "sent")
    assert await patient.page.is_hidden(f"{line} .chat-retry")

    # The connection drops before the answer: not sent at once; once back, "Send again" sends
    # it, and the clinician, who had it already, still sees it once.
    sock.hold = True
    await patient.page.fill("#chat-text", "Un'altra cosa")
    await patient.page.press("#chat-text", "Enter")
    await doctor_has(doc, "Un'altra cosa")
    await sock.cut()
    await own_line(patient, "Un'altra cosa", "failed")
    sock.held.clear()
    sock.hold = False
    await patient.page.wait_for_selector("#call-banner", state="hidden", timeout=15_000)
    await patient.page.click("#chat-log li[data-mine]:has-text(\"Un'altra cosa\") .chat-retry")
    await own_line(patient, "Un'altra cosa", "sent")
    # The clinician's socket delivers in order: once the next line is there, so is the retry.
    await patient.page.fill("#chat-text", "Ultima")
    await patient.page.press("#chat-text", "Enter")
    await doctor_has(doc, "Ultima")
    assert await doc.page.locator("#chat-log li:has-text(\"Un'altra cosa\")").count() == 1
    assert await patient.page.locator("#chat-log li").count() == 6

    # The server goes away: "reconnecting" said in the connection's region, then emptied.
    await empty_live_region(patient.page, "#live-connection")
    await live_server.stop()
    await says(patient.page, "#live-connection", words["reconnecting"])
    await live_server.start()
    await says(patient.page, "#live-connection", "", within_ms=15_000)
    allowed = ("net::ERR_CONNECTION_REFUSED", "WebSocket")
    patient.assert_clean(allow=allowed)
    doc.assert_clean(allow=allowed)
