"""In Chromium: the language chooser by keyboard alone, a browser set to Arabic, and "read
aloud" - hidden when the browser has no voice for the page's language, speaking the page's main
instruction in that language when it has one."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Visit, fits_width, open_page

# Chromium here has no speech engine, so no voices: a page script installed before Casa's
# stands in for the platform's voice list (one Arabic voice) and records what would be said.
# Everything else - the button, its showing, what it reads - is Casa's own code.
FAKE_VOICES = """
(() => {
  const spoken = [];
  window.__spoken = spoken;
  const voices = [{ name: 'Test Arabic', lang: 'ar-EG', localService: true, default: false },
                  { name: 'Test English', lang: 'en-GB', localService: true, default: true }];
  const synth = new EventTarget();
  synth.getVoices = () => voices;
  synth.speak = (u) => { spoken.push({ text: u.text, lang: u.lang, voice: u.voice.name }); };
  synth.cancel = () => { spoken.push({ cancel: true }); };
  Object.defineProperty(window, 'speechSynthesis', { value: synth });
  window.SpeechSynthesisUtterance = class extends EventTarget {
    constructor(text) { super(); this.text = text; }
  };
})();
"""


async def test_the_language_chooser_works_by_keyboard(live: str, browser: Any) -> None:
    w = await open_page(browser)
    await w.page.goto(live + "/join")
    # A first visit: the languages come first, each in its own words.
    assert await w.page.is_visible("section.lang-choose")
    await w.page.focus("section.lang-choose button[value=uk]")
    # The chooser posts and is redirected back to /join: the URL is the same before and
    # after, so wait for the navigation itself, not for the URL.
    async with w.page.expect_navigation():
        await w.page.keyboard.press("Enter")
    assert await w.page.get_attribute("html", "lang") == "uk"
    assert not await w.page.is_visible("section.lang-choose")
    # The top bar's disclosure: open it with the keyboard, choose Arabic.
    summary = w.page.locator("details.lang-switch summary")
    await summary.focus()
    await w.page.keyboard.press("Enter")
    await w.page.focus("details.lang-switch button[value=ar]")
    async with w.page.expect_navigation():
        await w.page.keyboard.press("Enter")
    assert await w.page.get_attribute("html", "lang") == "ar"
    assert await w.page.get_attribute("html", "dir") == "rtl"
    await fits_width(w)
    w.assert_clean()


async def test_a_browser_set_to_arabic_gets_arabic(live: str, browser: Any) -> None:
    w = await open_page(browser, locale="ar-EG")
    await w.page.goto(live + "/join")
    assert await w.page.get_attribute("html", "lang") == "ar"
    assert await w.page.get_attribute("html", "dir") == "rtl"
    w.assert_clean()


async def test_read_aloud_hides_itself_without_a_voice(live: str, visit: Visit,
                                                       browser: Any) -> None:
    w = await open_page(browser)
    await w.page.goto(f"{live}/join?lang=bn")
    await w.page.wait_for_load_state("load")
    voices = await w.page.evaluate(
        "() => 'speechSynthesis' in window ? speechSynthesis.getVoices().map(v => v.lang) : []")
    bengali = any(v.lower().startswith("bn") for v in voices)
    assert await w.page.is_hidden("button.read-aloud") != bengali
    w.assert_clean()


async def test_read_aloud_speaks_the_instruction_in_the_pages_language(
        live: str, visit: Visit, browser: Any) -> None:
    w = await open_page(browser)
    await w.page.context.add_init_script(FAKE_VOICES)
    await w.page.goto(f"{live}/join?lang=ar")
    button = w.page.locator("button.read-aloud")
    await button.wait_for(state="visible")
    await button.click()
    spoken = await w.page.evaluate("() => window.__spoken")
    said = [s for s in spoken if "text" in s]
    assert said and said[-1]["voice"] == "Test Arabic" and said[-1]["lang"] == "ar-EG"
    title = await w.page.inner_text("#join-title")
    lead = await w.page.inner_text("#join-lead")
    assert title in said[-1]["text"] and lead in said[-1]["text"]
    # Pressed again, it stops, and says so on the button.
    assert await button.get_attribute("aria-pressed") == "true"
    await button.click()
    assert await button.get_attribute("aria-pressed") == "false"
    assert (await w.page.evaluate("() => window.__spoken"))[-1] == {"cancel": True}
    # A language with no voice: no button.
    await w.page.goto(f"{live}/join?lang=ru")
    await w.page.wait_for_load_state("load")
    assert await w.page.is_hidden("button.read-aloud")
    w.assert_clean()
