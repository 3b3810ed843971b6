"""The operators' fleet page: colours from heartbeats, checked in a real headless Chromium.

Two terminals send heartbeats to a live simulator on loopback (one with its receipt printer
out of paper); Chromium (Debian package ``chromium``) loads GET /fleet and dumps the DOM it
rendered, which is parsed here. The colour rules themselves are checked on ``assess``
with a fixed clock (no waiting).
"""
from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.hardware.base import DeviceState, SupplyState, status
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.db import CST
from kiosk.backend_sim.fleet_page import AMBER_AFTER_S, RED_AFTER_S, assess, render_fleet_page
from kiosk.backend_sim.server import SimServer, serve
from kiosk.services.heartbeat import HeartbeatSender

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
TERMINALS = {"JN-FLEET-0001": b"fleet-one", "JN-FLEET-0002": b"fleet-two"}


class _Rows(HTMLParser):
    """terminal id → {status, alerts: [...], supplies: [...]} from the fleet table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None
        self._cell = ""
        self._li: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-terminal"):
            self._current = {"status": a.get("data-status"), "class": a.get("class"), "alerts": [], "supplies": [],
                             "dot": ""}
            self.rows[str(a["data-terminal"])] = self._current
        elif tag == "td" and self._current is not None:
            self._cell = str(a.get("class") or "")
        elif tag == "li" and self._current is not None and self._cell in ("alerts", "supplies"):
            self._li = self._current[self._cell]
            self._li.append("")
        elif tag == "span" and self._current is not None and "dot" in str(a.get("class")):
            self._current["dot"] = str(a.get("style"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._current = None
        elif tag == "li":
            self._li = None

    def handle_data(self, data: str) -> None:
        if self._li is not None:
            self._li[-1] += data


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0, terminals=dict(TERMINALS))
    try:
        yield server
    finally:
        server.stop()


def _beat(sim: SimServer, terminal_id: str, devices: dict[str, Any], state: Path) -> None:
    client = BackendClient(sim.url, terminal_id, TERMINALS[terminal_id], DEMO_BACKEND_PUBLIC_KEY, 2.0, 5.0, 0, 0.0)
    result = HeartbeatSender(client, state, terminal_id, DEMO_BACKEND_PUBLIC_KEY, lambda: devices).beat()
    assert result.sent == 1


def _chromium(url: str, tmp_path: Path, *extra: str) -> str:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed (Debian package chromium, Makefile APT_TEST)"
    proc = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", *extra, url],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_chromium_shows_both_terminals_with_the_right_colours(sim: SimServer, tmp_path: Path) -> None:
    _beat(sim, "JN-FLEET-0001", {"receipt_printer": status(DeviceState.ONLINE, {"paper": SupplyState.OK}),
                                 "a4_printer": status(DeviceState.ONLINE, {"paper": SupplyState.OK})}, tmp_path / "one")
    _beat(sim, "JN-FLEET-0002", {"receipt_printer": status(DeviceState.ONLINE, {"paper": SupplyState.OUT}),
                                 "a4_printer": status(DeviceState.ONLINE, {"paper": SupplyState.OK})}, tmp_path / "two")
    dom = _chromium(f"{sim.url}/fleet?lang=en", tmp_path, "--dump-dom")
    parser = _Rows()
    parser.feed(dom)
    rows = parser.rows
    assert set(rows) == set(TERMINALS)
    assert rows["JN-FLEET-0001"]["status"] == "green" and "status-green" in rows["JN-FLEET-0001"]["class"]
    assert rows["JN-FLEET-0001"]["alerts"] == []
    assert rows["JN-FLEET-0002"]["status"] == "red" and "#c62828" in rows["JN-FLEET-0002"]["dot"]
    assert rows["JN-FLEET-0002"]["alerts"] == ["Paper out: Receipt printer"]
    assert "Receipt printer Paper: out" in rows["JN-FLEET-0002"]["supplies"]
    assert '<meta http-equiv="refresh"' in dom
    # The Chinese page (the default) says the same in Chinese.
    zh = _Rows()
    zh.feed(_chromium(f"{sim.url}/fleet", tmp_path, "--dump-dom"))
    assert zh.rows["JN-FLEET-0002"]["alerts"] == ["缺纸：凭条打印机"]
    assert "凭条打印机 纸张: 用尽" in zh.rows["JN-FLEET-0002"]["supplies"]


def test_a_screenshot_of_the_page_is_a_png(sim: SimServer, tmp_path: Path) -> None:
    shot = tmp_path / "fleet.png"
    _chromium(f"{sim.url}/fleet", tmp_path, f"--screenshot={shot}", "--window-size=1280,600",
              "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the colour rules (fixed clock) ----------------------------------------------------------------
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=CST)


def _row(age_s: float | None, devices: dict[str, Any] | None = None, status_: str = "active") -> dict[str, Any]:
    heard = (NOW - timedelta(seconds=age_s)).isoformat() if age_s is not None else None
    hb = {"devices": devices or {}} if heard else None
    return {"terminal_id": "T", "status": status_, "last_heartbeat_at": heard, "last_heartbeat": hb}


OK = {"receipt_printer": {"state": "online", "supplies": {"paper": "ok"}, "conditions": []}}


@pytest.mark.parametrize("row, colour, alert", [
    (_row(10, OK), "green", None),
    (_row(10, {"receipt_printer": {"state": "online", "supplies": {"paper": "low"}}}), "amber", "Paper low: Receipt printer"),
    (_row(10, {"a4_printer": {"state": "user_error", "conditions": ["cover_open"]}}), "amber",
     "Device needs attention: A4 printer (Cover open)"),
    (_row(AMBER_AFTER_S + 1, OK), "amber", "Heartbeat late"),
    (_row(RED_AFTER_S + 60, OK), "red", "Heartbeat missing for 6 min"),
    (_row(None), "red", "No heartbeat received yet"),
    (_row(10, {"id_card": {"state": "hardware_error"}}), "red", "Device fault: ID card reader (Hardware fault)"),
    (_row(10, OK, "revoked"), "red", "Terminal revoked"),
])
def test_colour_rules(row: dict[str, Any], colour: str, alert: str | None) -> None:
    view = assess(row, NOW, "en")
    assert view.colour == colour
    if alert is None:
        assert view.alerts == ()
    else:
        assert any(a.startswith(alert) for a in view.alerts), view.alerts


def test_terminal_ids_are_escaped_in_the_page() -> None:
    page = render_fleet_page([{**_row(10, OK), "terminal_id": "<script>x</script>"}], NOW, "en")
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
