"""What Chromium's accessibility tree (the one screen readers read) holds for an element, read
over CDP (``Accessibility.getFullAXTree``): a live region's role, politeness and text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.visible_text import bundled_words

# A script's words wrap names in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE.
ISOLATES = str.maketrans("", "", "\u2068\u2069")


@dataclass(frozen=True)
class Node:
    role: str
    live: str | None
    text: str


async def ax_node(page: Any, selector: str) -> Node | None:
    """The accessibility node of the element ``selector`` names, with the text of its
    descendants; None when the element is missing or left out of the tree (display: none,
    hidden, or inside something hidden)."""
    cdp = await page.context.new_cdp_session(page)
    try:
        doc = await cdp.send("DOM.getDocument", {"depth": 0})
        found = await cdp.send("DOM.querySelector",
                               {"nodeId": doc["root"]["nodeId"], "selector": selector})
        if not found["nodeId"]:
            return None
        backend = (await cdp.send("DOM.describeNode",
                                  {"nodeId": found["nodeId"]}))["node"]["backendNodeId"]
        nodes: list[dict[str, Any]] = (await cdp.send("Accessibility.getFullAXTree"))["nodes"]
    finally:
        await cdp.detach()
    by_id = {n["nodeId"]: n for n in nodes}
    node = next((n for n in nodes if n.get("backendDOMNodeId") == backend), None)
    if node is None or node.get("ignored"):
        return None
    props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
    texts: list[str] = []

    def walk(n: dict[str, Any]) -> None:
        for child_id in n.get("childIds", []):
            child = by_id.get(child_id)
            if child is None or child.get("ignored"):
                continue
            if child.get("role", {}).get("value") == "StaticText":
                texts.append(str(child.get("name", {}).get("value", "")))
            else:
                walk(child)

    walk(node)
    return Node(role=node.get("role", {}).get("value", ""), live=props.get("live"),
                text="".join(texts).translate(ISOLATES).strip())


async def empty_live_region(page: Any, selector: str) -> None:
    """The element is a polite live region in the tree, with no text yet: what it says later
    is a change a screen reader reads out."""
    node = await ax_node(page, selector)
    assert node is not None, f"{selector} is not in the accessibility tree"
    assert (node.role, node.live, node.text) == ("status", "polite", ""), node


async def says(page: Any, selector: str, text: str, within_ms: int = 10_000) -> None:
    """The live region's text becomes ``text`` (isolates aside), in the DOM and then in the
    accessibility tree, and the region is still the same polite one."""
    await page.wait_for_function(
        """([sel, want]) => {
             const el = document.querySelector(sel);
             return !!el && el.textContent.replace(/[\\u2068\\u2069]/g, '').trim() === want;
           }""", arg=[selector, text], timeout=within_ms)
    node = await ax_node(page, selector)
    assert node is not None, f"{selector} left the accessibility tree"
    assert (node.role, node.live, node.text) == ("status", "polite", text), node


async def page_strings(page: Any) -> dict[str, str]:
    """The words the page's scripts were given, in its language: those of its bundle
    (server/bundles.py) and of its JSON data blocks."""
    strings: dict[str, str] = {}
    for src in await page.eval_on_selector_all(
            "script[type=module][src]", "(els) => els.map((e) => e.src)"):
        strings.update(bundled_words(await (await page.request.get(src)).text()))
    strings.update(await page.evaluate(
        """() => Object.assign({}, ...[...document.querySelectorAll(
             'script[type="application/json"][data-strings]')]
             .map((s) => JSON.parse(s.textContent)))"""))
    return strings
