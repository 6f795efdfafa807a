"""What a person sees or hears of a page: its text nodes, the attributes read aloud or shown
(aria-label, title, placeholder, alt, value of buttons) and the words its scripts will show (the
``data-strings`` JSON blocks), each as one whitespace-normalised piece."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

SPOKEN_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt", "data-label-stop",
                     "data-confirm")
HIDDEN_ELEMENTS = {"style", "svg"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skip = 0
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name in SPOKEN_ATTRIBUTES:
            if named.get(name):
                self.pieces.append(str(named[name]))
        if tag in HIDDEN_ELEMENTS:
            self._skip += 1
        elif tag == "script":
            # Only the JSON blocks of words are text a person will see; scripts are code.
            self._script = "" if "data-strings" in named else None
            self._skip += 1
        elif tag == "title":
            pass

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS or tag == "script":
            self._skip = max(0, self._skip - 1)
        if tag == "script" and self._script is not None:
            for value in json.loads(self._script).values():
                self.pieces.append(str(value))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script += data
        elif not self._skip:
            self.pieces.append(data)


def visible_text(html: str) -> list[str]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    out = []
    for piece in collector.pieces:
        text = re.sub(r"\s+", " ", piece).strip()
        if text:
            out.append(text)
    return out


BUNDLE_SRC = re.compile(r'<script type="module" src="(/static/bundles/[^"]+)"')
BUNDLED_WORDS = re.compile(r'^casa\$modules\["i18n-client\.js"\]\.addStrings\((\{.*\})\);$', re.M)


def bundled_words(script: str) -> dict[str, str]:
    """The words a page's bundle hands to i18n-client.js (server/bundles.py), if any."""
    found = BUNDLED_WORDS.search(script)
    return {} if found is None else dict(json.loads(found.group(1)))


async def with_bundled_words(client: Any, html: str) -> str:
    """``html`` with the words of its bundle (fetched with ``client``) added as a data-strings
    block, where they were before they moved into the script: what the page will show."""
    for url in BUNDLE_SRC.findall(html):
        words = bundled_words(await (await client.get(url)).text())
        if words:
            block = json.dumps(words, ensure_ascii=False).replace("<", "\\u003c")
            html += f'<script type="application/json" data-strings>{block}</script>'
    return html
