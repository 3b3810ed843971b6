"""The fleet page's help desk in a real headless Chromium: open requests, their masked screenshot, the answer form.

A kiosk (the demo terminal's signed client) calls for help with a real JPEG screenshot; Chromium
loads GET /fleet and dumps the DOM it rendered, and takes a picture of the page with the
screenshot drawn in it. The form is then posted as the browser posts it (urlencoded ``reply``
to the form's ``action``), and the kiosk's next poll reads the reply.
"""
from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from PIL import Image

from kiosk.backend_sim.help_page import render_help_section
from kiosk.backend_sim.server import SimServer, serve
from kiosk.services.help import HelpContext, HelpDesk, screenshot_body
from tests.backend_sim.test_fleet_page import _chromium
from tests.conftest import make_client


class _HelpList(HTMLParser):
    """ticket → {terminal, screen, img, action, fields} from the page's help section."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None
        self._in_screen = False
        self.none_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = str(a.get("class") or "")
        if tag == "div" and cls == "help-request":
            self._current = {"terminal": a.get("data-terminal"), "screen": "", "img": "", "action": "",
                             "fields": []}
            self.requests[str(a["data-ticket"])] = self._current
        elif self._current is not None:
            if tag == "img":
                self._current["img"] = a.get("src")
            elif tag == "form":
                self._current["action"], self._current["method"] = a.get("action"), a.get("method")
            elif tag in ("textarea", "input"):
                self._current["fields"].append(a.get("name"))
            elif tag == "span" and cls == "help-screen":
                self._in_screen = True
        if tag == "p" and cls == "help-none":
            self.none_text = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_screen = False

    def handle_data(self, data: str) -> None:
        if self._in_screen and self._current is not None:
            self._current["screen"] += data


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (180, 320), (13, 33, 69)).save(out, "JPEG", quality=80)
    return out.getvalue()


def test_the_officer_sees_the_request_with_its_screenshot_and_answers_it(sim: SimServer, tmp_path: Path) -> None:
    desk = HelpDesk(make_client(sim.url), poll_s=60)
    image = _jpeg()
    state = desk.open(HelpContext("identify", "S01", "identify"), screenshot_body(image), identity_masked="王*明")
    page = _HelpList()
    page.feed(_chromium(f"{sim.url}/fleet?lang=en", tmp_path, "--dump-dom"))
    shown = page.requests[state.ticket]
    assert shown["terminal"] == "JN-DEMO-0001" and shown["screen"] == "identify"
    assert shown["img"] == f"/fleet/help/{state.ticket}/screenshot"
    assert shown["action"] == f"/fleet/help/{state.ticket}/answer" and shown["method"] == "post"
    assert "reply" in shown["fields"]
    served = requests.get(sim.url + shown["img"], timeout=5)
    assert served.headers["Content-Type"] == "image/jpeg" and served.content == image
    # Chromium draws the screenshot into the page (a dark-blue block on the white page).
    picture = tmp_path / "fleet.png"
    _chromium(f"{sim.url}/fleet?lang=en", tmp_path, f"--screenshot={picture}", "--window-size=1280,900",
              "--hide-scrollbars")
    colours = Image.open(picture).convert("RGB").getcolors(1 << 20) or []
    assert any(abs(r - 13) < 8 and abs(g - 33) < 8 and abs(b - 69) < 8 and n > 5000 for n, (r, g, b) in colours)

    # The form, posted as the browser posts it.
    answered = requests.post(sim.url + shown["action"], data={"reply": "民警两分钟后到，请稍候。", "lang": "en"},
                             allow_redirects=False, timeout=5)
    assert answered.status_code == 303 and answered.headers["Location"] == "/fleet?lang=en"
    after = _HelpList()
    after.feed(_chromium(f"{sim.url}/fleet?lang=en", tmp_path, "--dump-dom"))
    assert state.ticket not in after.requests and after.none_text
    polled = desk.poll()
    assert polled is not None and polled.answered and polled.reply == "民警两分钟后到，请稍候。"
    desk.end_session()


def test_the_page_and_its_pictures_are_loopback_only_and_an_empty_reply_is_refused(sim: SimServer) -> None:
    desk = HelpDesk(make_client(sim.url), poll_s=60)
    state = desk.open(HelpContext("home"))
    assert requests.post(f"{sim.url}/fleet/help/{state.ticket}/answer", data={"reply": "  "},
                         timeout=5).status_code == 400
    assert requests.get(f"{sim.url}/fleet/help/{state.ticket}/screenshot", timeout=5).status_code == 404
    assert requests.post(f"{sim.url}/fleet/help/999999/answer", data={"reply": "x"}, timeout=5).status_code == 404
    desk.end_session()


def test_texts_from_kiosks_are_escaped() -> None:
    html = render_help_section([{"ticket": "100001", "terminal_id": "<b>T</b>", "screen": "<script>", "item_id": "",
                                 "step": "", "asked_at": "", "received_at": "", "identity_masked": "<i>王*明</i>",
                                 "screenshots": 0}], "en")
    assert "<script>" not in html and "<b>T" not in html and "&lt;i&gt;王*明&lt;/i&gt;" in html
