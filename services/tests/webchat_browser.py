"""Two people use the web chat in a phone-sized Chromium (run in a namespace).

Run by ``test_webchat_lab.py`` inside the lab's client namespace, as a
person's phone would: ``python webchat_browser.py URL SCREENSHOT``. Two
browser contexts (two phones, two guest sessions) open the page, each
picks a nickname, one posts a line and the other must see it. Every
request the pages make is recorded. Prints one JSON object: the requests,
what the second person saw, and the seconds each step took.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
MESSAGE = "Water at the school until 18:00"


def join(browser, url: str, nick: str, requests: list[str], shots: Path, locale: str):
    """A phone set to ``locale`` opens the chat and joins the room as ``nick``."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale=locale)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.on(
        "console",
        lambda message: print(f"{nick} console: {message.text}", file=sys.stderr),
    )
    page.on("pageerror", lambda error: print(f"{nick} error: {error}", file=sys.stderr))
    page.goto(url)
    try:
        return _join(page, nick, context, shots)
    except Exception:
        page.screenshot(path=str(shots / f"webchat-{nick}-failed.png"))
        print(page.content()[-4000:], file=sys.stderr)
        raise


def _join(page, nick: str, context, shots: Path):
    nick_input = page.locator("converse-muc-nickname-form input[name=nick]")
    nick_input.wait_for(timeout=20000)
    page.screenshot(path=str(shots / "webchat-360-nickname.png"))
    nick_input.fill(nick)
    nick_input.press("Enter")
    page.locator("textarea.chat-textarea").wait_for(timeout=20000)
    return context, page


def main(url: str, screenshot: str) -> None:
    requests: list[str] = []
    shots = Path(screenshot).parent
    steps: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"]
        )
        try:
            start = time.monotonic()
            _, amira = join(browser, url, "amira", requests, shots, "en-GB")
            steps["first_join_s"] = round(time.monotonic() - start, 2)
            # A phone in Spanish: Converse.js fetches its translation, locally.
            _, bruno = join(browser, url, "bruno", requests, shots, "es-ES")
            start = time.monotonic()
            amira.locator("textarea.chat-textarea").fill(MESSAGE)
            amira.locator("textarea.chat-textarea").press("Enter")
            seen = bruno.locator(".chat-msg__text", has_text=MESSAGE)
            seen.first.wait_for(timeout=15000)
            steps["delivery_s"] = round(time.monotonic() - start, 2)
            author = bruno.locator(".chat-msg", has_text=MESSAGE).first
            bruno.screenshot(path=screenshot)
            spanish = bruno.locator("textarea.chat-textarea").get_attribute(
                "placeholder"
            )
            width = bruno.evaluate("document.documentElement.scrollWidth")
            print(
                json.dumps(
                    {
                        "requests": requests,
                        "seen": seen.first.inner_text(),
                        "seen_from": author.inner_text(),
                        "scroll_width": width,
                        "placeholder_es": spanish,
                        "steps": steps,
                    }
                )
            )
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
