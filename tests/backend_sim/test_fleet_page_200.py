"""The fleet page with 200 terminals, in a real headless Chromium: faulty terminals on top, search, filter, actions.

200 terminals send real signed heartbeats (kiosk.backend_sim.fleet_demo) to a simulator on
loopback; Chromium (Debian package ``chromium``) loads /fleet and dumps the DOM it rendered.
How fast it renders is a figure of `make bench` (benchmarks/bench_fleet.py), not asserted here.
"""
from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from kiosk.backend_sim.fleet_demo import SimulatedFleet, plan, send_heartbeats
from kiosk.backend_sim.server import SimServer, serve

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
FLEET = plan(200)


class _Page(HTMLParser):
    """Rows of the fleet table in page order, with their cells' text, and the enrollment codes table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.codes: list[str] = []
        self.legend = ""
        self._cell: str | None = None
        self._in_row = False  # inside a terminal's row (the release table below has cells of its own)
        self._in_legend = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "terminal" in str(a.get("class", "")).split():
            self.rows.append({"id": a.get("data-terminal"), "status": a.get("data-status"), "cells": {}})
            self._in_row = True
        elif tag == "tr" and "code" in str(a.get("class", "")).split():
            self.codes.append(str(a.get("data-terminal")))
        elif tag == "td" and self._in_row and a.get("class"):
            self._cell = str(a["class"])
            self.rows[-1]["cells"].setdefault(self._cell, "")
        elif tag == "p" and a.get("id") == "legend":
            self._in_legend = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "tr"):
            self._cell = None
            self._in_row = self._in_row and tag == "td"
        elif tag == "p":
            self._in_legend = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None and self.rows:
            self.rows[-1]["cells"][self._cell] += data
        if self._in_legend:
            self.legend += data


@pytest.fixture(scope="module")
def fleet_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0, terminals=dict(FLEET.secrets))
    try:
        assert send_heartbeats(server.url, FLEET, tmp_path_factory.mktemp("fleet")) == 200 - len(FLEET.never_heard)
        yield server
    finally:
        server.stop()


def _dom(url: str, tmp_path: Path) -> _Page:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed (Debian package chromium, Makefile APT_TEST)"
    proc = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = _Page()
    page.feed(proc.stdout)
    return page


def test_200_terminals_faulty_ones_first_in_headless_chromium(fleet_sim: SimServer, tmp_path: Path) -> None:
    page = _dom(f"{fleet_sim.url}/fleet?lang=en", tmp_path)
    assert len(page.rows) == 200
    order = [r["id"] for r in page.rows]
    red, amber = FLEET.red, FLEET.amber
    assert set(order[:len(red)]) == red  # every faulty terminal above every other
    assert set(order[len(red):len(red) + len(amber)]) == amber
    assert all(r["status"] == "green" for r in page.rows[len(red) + len(amber):])
    assert set(order[:len(FLEET.never_heard)]) == set(FLEET.never_heard)  # silent longest: first
    first_down = next(r for r in page.rows if r["id"] in FLEET.device_down)
    assert "Device fault:" in first_down["cells"]["alerts"]
    green = page.rows[-1]["cells"]
    assert green["name"].endswith("24小时智慧警局") and green["location"].startswith("济南市")
    assert "Receipt printer: Ready" in green["devices"] and green["version"] == "0.1.0"
    assert " h" in green["uptime"] and green["last-transaction"].startswith("20")
    assert "Working" in page.legend and "a supply out" in page.legend


def test_the_chinese_page_names_devices_and_supplies_in_chinese(fleet_sim: SimServer, tmp_path: Path) -> None:
    page = _dom(f"{fleet_sim.url}/fleet", tmp_path)
    out = next(r for r in page.rows if r["id"] == FLEET.paper_out[0])
    assert "缺纸：凭条打印机" in out["cells"]["alerts"]
    assert "凭条打印机 纸张: 用尽" in out["cells"]["supplies"]
    assert "身份证阅读器: 正常" in out["cells"]["devices"] and "receipt_printer" not in out["cells"]["devices"]


def test_search_and_filter(fleet_sim: SimServer, tmp_path: Path) -> None:
    problems = _dom(f"{fleet_sim.url}/fleet?lang=en&status=problems", tmp_path)
    assert {r["id"] for r in problems.rows} == FLEET.red | FLEET.amber
    one = _dom(f"{fleet_sim.url}/fleet?lang=en&q={FLEET.paper_low[0].lower()}", tmp_path)
    assert [r["id"] for r in one.rows] == [FLEET.paper_low[0]]
    by_place = requests.get(f"{fleet_sim.url}/fleet", params={"q": "槐荫区", "lang": "en"}, timeout=10).text
    found = _Page()
    found.feed(by_place)
    assert found.rows and all("槐荫区" in r["cells"]["location"] for r in found.rows)


def test_actions_are_queued_only_after_confirmation(fleet_sim: SimServer, tmp_path: Path) -> None:
    from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
    from kiosk.services.backend import BackendClient
    from kiosk.services.heartbeat import HeartbeatSender

    terminal = FLEET.device_down[0]
    confirm = requests.get(f"{fleet_sim.url}/fleet/confirm", params={"terminal": terminal, "kind": "restart",
                                                                     "lang": "en"}, timeout=10)
    assert confirm.status_code == 200 and f"Send \u201cRestart\u201d to terminal {terminal}?" in confirm.text
    no_confirm = requests.post(f"{fleet_sim.url}/fleet/commands", data={"terminal": terminal, "kind": "restart"},
                               timeout=10, allow_redirects=False)
    assert no_confirm.status_code == 400
    done = requests.post(f"{fleet_sim.url}/fleet/commands", data={"terminal": terminal, "kind": "restart",
                                                                 "lang": "en", "confirm": "yes"},
                         timeout=10, allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"].startswith("/fleet?")
    notice = requests.get(fleet_sim.url + done.headers["Location"], timeout=10).text
    assert f"Queued \u201cRestart\u201d for terminal {terminal}" in notice
    handled: list[str] = []

    class Handler:
        def handle_command(self, command: Any) -> None:
            handled.append(command.kind)

    client = BackendClient(fleet_sim.url, terminal, FLEET.secrets[terminal], DEMO_BACKEND_PUBLIC_KEY, 2.0, 10.0, 0,
                           0.0)
    HeartbeatSender(client, tmp_path / "t", terminal, DEMO_BACKEND_PUBLIC_KEY, lambda: {}, handler=Handler()).beat()
    assert handled == ["restart"]  # exactly the one confirmed command reached the terminal


def test_unused_enrollment_codes_are_listed(fleet_sim: SimServer, tmp_path: Path) -> None:
    from kiosk.services.backend import enroll
    from provisioning.enroll import new_key_and_csr

    codes = {tid: requests.post(f"{fleet_sim.url}/api/v1/sim/enrollment-codes", json={"terminal_id": tid},
                                timeout=10).json()["code"] for tid in ("JN-NEW-0001", "JN-NEW-0002")}
    _key, csr = new_key_and_csr("JN-NEW-0001")
    enroll(fleet_sim.url, "JN-NEW-0001", codes["JN-NEW-0001"], csr)
    page = _dom(f"{fleet_sim.url}/fleet?lang=en", tmp_path)
    assert "JN-NEW-0002" in page.codes and "JN-NEW-0001" not in page.codes
