"""The invitation link in the browser: the page in one answer, the token out of the address bar,
the patient's call page made of three files, and a returning patient asking for the page alone.

Every request is counted as Chromium's network stack sees it (DevTools' Network domain): one
``requestWillBeSent`` per request and one more per redirect hop (those carry
``redirectResponse``), less those the HTTP cache answered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.config import Config
from server.staff import Role
from tests.browser.conftest import Visit, Watched, book, open_page, soon
from tests.conftest import StaffFactory

# A returning patient's call page: the page itself, every script and style from the cache.
REPEAT_VISIT_MAX_REQUESTS = 1


class Network:
    """The requests a page made over the network, redirect hops included."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.redirects = 0
        self.cached: set[str] = set()
        self.ids: dict[str, list[str]] = {}

    async def watch(self, w: Watched) -> None:
        cdp = await w.page.context.new_cdp_session(w.page)
        await cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestServedFromCache", lambda e: self.cached.add(e["requestId"]))
        cdp.on("Network.responseReceived", self._received)

    def _received(self, event: dict[str, Any]) -> None:
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromMemoryCache"):
            self.cached.add(event["requestId"])

    def _sent(self, event: dict[str, Any]) -> None:
        if "redirectResponse" in event:
            self.redirects += 1
        self.ids.setdefault(event["requestId"], []).append(event["request"]["url"])

    def sent(self) -> list[str]:
        """URLs of the page's load that went to the network (each redirect hop is one); the
        pre-call check's own calls to /api/ (its connection test) are not the page's load."""
        return [url for rid, urls in self.ids.items() if rid not in self.cached for url in urls
                if not url.startswith("data:") and "/api/" not in url]


async def _precall(w: Watched, live: str, token: str, room: str) -> None:
    await w.page.goto(f"{live}/join/{token}")
    await w.page.wait_for_selector("#stage-precall:not([hidden])")
    await w.page.wait_for_function(
        f"() => location.pathname === '/consultation/{room}'", timeout=10_000)
    await w.page.wait_for_load_state("load")


async def test_the_link_opens_the_precall_check_in_one_answer_and_leaves_the_bar(
        live: str, visit: Visit, browser: Any) -> None:
    w = await open_page(browser)
    net = Network()
    await net.watch(w)
    answers: list[int] = []
    w.page.on("response", lambda r: answers.append(r.status)
              if r.request.resource_type == "document" else None)
    await _precall(w, live, visit.link, visit.room)
    assert answers == [200], "the page itself, no redirect"
    assert net.redirects == 0
    # The token is gone from the address bar and from the tab's history entry.
    assert visit.link not in w.page.url and w.page.url.endswith(f"/consultation/{visit.room}")
    # One entry for the new tab's blank page, one for ours (replaced, not added to).
    assert await w.page.evaluate("history.length") == 2
    cookies = {c["name"] for c in await w.page.context.cookies()}
    assert "casa_patient" in cookies and "casa_join" not in cookies
    # The page, one stylesheet, one script (and the icon): no clinician's module, nothing else.
    sent = net.sent()
    scripts = [u for u in sent if ".js" in u]
    styles = [u for u in sent if ".css" in u]
    assert len(scripts) == 1 and "/static/bundles/" in scripts[0], sent
    assert len(styles) == 1 and "/static/bundles/" in styles[0], sent
    assert not [u for u in sent if "call-panel" in u or "notes" in u], sent
    body = await w.page.evaluate(f"fetch({scripts[0]!r}).then((r) => r.text())")
    assert "class ClinicianPanel" not in body
    assert 'casa$modules["call-panel.js"]' not in body and 'casa$modules["notes.js"]' not in body
    assert 'casa$modules["call.js"]' in body
    # Words come with the script: the pre-call check speaks Italian (the patient's language).
    assert "data-strings" not in await w.page.content()
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    assert await w.page.inner_text("#camera-result") != "camera_ok"
    # A reload stays on the clean address, with the session cookie.
    await w.page.reload()
    await w.page.wait_for_selector("#stage-precall:not([hidden])")
    assert w.page.url.endswith(f"/consultation/{visit.room}")
    w.assert_clean()


async def test_a_returning_patient_asks_for_the_page_alone(
        live: str, visit: Visit, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    w = await open_page(browser)
    await _precall(w, live, visit.link, visit.room)
    # Her next consultation, another day's invitation, in the same browser.
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, link, _ = await book(config, gp.id, soon() + timedelta(minutes=1))
    page = await w.page.context.new_page()
    again = Watched(page)
    net = Network()
    await net.watch(again)
    await _precall(again, live, link, room)
    sent = net.sent()
    assert net.redirects == 0
    assert len(sent) <= REPEAT_VISIT_MAX_REQUESTS, sent
    assert sent[0].endswith(f"/join/{link}")
    again.assert_clean()


async def test_a_refused_link_gets_its_page_directly_and_leaves_the_bar(
        live: str, config: Config, make_staff: StaffFactory, browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, _, early, _ = await book(config, gp.id, timedelta(hours=3))
    _, _, _, over, _ = await book(config, gp.id, timedelta(hours=-3), given="Lucia")
    for token, status in ((early, 200), (over, 410), ("A" * 43, 404)):
        w = await open_page(browser)
        net = Network()
        await net.watch(w)
        resp = await w.page.goto(f"{live}/join/{token}")
        assert resp is not None and resp.status == status and net.redirects == 0
        await w.page.wait_for_function("() => location.pathname === '/join/status'",
                                       timeout=10_000)
        assert token not in w.page.url
        await w.page.context.close()
