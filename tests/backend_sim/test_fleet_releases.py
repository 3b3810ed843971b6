"""The fleet page's view of updates: each terminal's release and last update, and per release its rollout, how
many terminals run it and how many rolled it back, from a repository published with kiosk-release's Publisher and
heartbeats sent to the live simulator."""
from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import requests

from kiosk.backend_sim.fleet_releases import offered_releases
from kiosk.backend_sim.server import serve
from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.services.backend import BackendClient
from kiosk.services.heartbeat import HeartbeatSender
from provisioning.release.manifest import Manifest
from provisioning.release.repository import Publisher

TERMINALS = {"JN-ROLL-0001": b"roll-one", "JN-ROLL-0002": b"roll-two", "JN-ROLL-0003": b"roll-three"}


def _release(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = f"kiosk {version}".encode()
    name = f"police_kiosk-{version}-py3-none-any.whl"
    (folder / name).write_bytes(data)
    manifest = Manifest.from_dict({"version": version, "requires_python": ">=3.11",
                                   "built_at": "2026-12-01T00:00:00+00:00",
                                   "wheels": [{"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                                               "size": len(data)}], "min_from_version": None})
    path = folder / manifest.file_name
    path.write_bytes(manifest.to_json())
    return path


class _Tables(HTMLParser):
    """Rows of #releases (by data-version) and the last-update cells of #fleet (by terminal)."""

    def __init__(self) -> None:
        super().__init__()
        self.releases: dict[str, dict[str, str]] = {}
        self.updates: dict[str, dict[str, str]] = {}
        self._row: dict[str, str] | None = None
        self._cell = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-version" in a:
            self._row = self.releases.setdefault(a["data-version"], {"halted": a["data-halted"]})
        elif tag == "tr" and "data-terminal" in a:
            self._row = self.updates.setdefault(a["data-terminal"], {})
        elif tag == "td" and self._row is not None:
            self._cell = a.get("class", "")
            self._row[self._cell] = ""
            if "data-outcome" in a:
                self._row["outcome"] = a["data-outcome"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell:
            self._row[self._cell] += data


def _beat(sim: Any, tmp: Path, terminal: str, version: str, last: dict[str, Any] | None) -> None:
    state = tmp / terminal
    if last:
        (state / "update").mkdir(parents=True)
        (state / "update" / "last.json").write_text(json.dumps(last))
    client = BackendClient(sim.url, terminal, TERMINALS[terminal], DEMO_BACKEND_PUBLIC_KEY, 1.0, 5.0, 0, 0.0)
    HeartbeatSender(client, state, terminal, DEMO_BACKEND_PUBLIC_KEY, lambda: {}, app_version=version).beat()


def test_the_page_shows_each_release_rollout_running_and_rolled_back(tmp_path):
    publisher = Publisher.init(tmp_path / "repo", tmp_path / "keys")
    publisher.publish(_release(tmp_path / "w", "2.0.0"))
    publisher.publish(_release(tmp_path / "w", "2.1.0"), rollout_percent=10)
    publisher.publish(_release(tmp_path / "w", "2.2.0"), rollout_percent=25)
    publisher.halt("2.2.0")
    publisher.set_rollout("2.1.0", 40)
    offered = offered_releases(str(tmp_path / "repo"))
    assert {v: (o.rollout_percent, o.halted) for v, o in offered.items()} == {
        "2.0.0": (100, False), "2.1.0": (40, False), "2.2.0": (0, True)}

    at = "2026-12-05T03:10:00+00:00"
    with serve("127.0.0.1", 0, terminals=TERMINALS, update_repo=str(tmp_path / "repo")) as sim:
        _beat(sim, tmp_path, "JN-ROLL-0001", "2.1.0", {"outcome": "installed", "version": "2.1.0", "reason": None,
                                                      "at": at})
        _beat(sim, tmp_path, "JN-ROLL-0002", "2.1.0", {"outcome": "rolled_back", "version": "2.2.0",
                                                      "reason": "not_healthy", "at": at})
        _beat(sim, tmp_path, "JN-ROLL-0003", "2.0.0", None)
        page = requests.get(f"{sim.url}/fleet", params={"lang": "en"}, timeout=5).text
        zh = requests.get(f"{sim.url}/fleet", timeout=5).text
    tables = _Tables()
    tables.feed(page)
    assert list(tables.releases) == ["2.2.0", "2.1.0", "2.0.0"]  # newest first
    assert tables.releases["2.2.0"] == {"halted": "true", "version": "2.2.0", "rollout": "0 % (halted)",
                                        "running": "0", "rolled-back": "1"}
    assert tables.releases["2.1.0"] == {"halted": "false", "version": "2.1.0", "rollout": "40 %", "running": "2",
                                        "rolled-back": "0"}
    assert (tables.releases["2.0.0"]["running"], tables.releases["2.0.0"]["rollout"]) == ("1", "100 %")
    assert tables.updates["JN-ROLL-0001"]["outcome"] == "installed"
    assert tables.updates["JN-ROLL-0002"]["outcome"] == "rolled_back"
    assert tables.updates["JN-ROLL-0002"]["last-update"] == "rolled back 2.2.0 (not_healthy)"
    assert tables.updates["JN-ROLL-0002"]["version"] == "2.1.0"
    assert tables.updates["JN-ROLL-0003"]["outcome"] == "" and tables.updates["JN-ROLL-0003"]["last-update"] == "-"
    assert "Update rolled back: 2.2.0 (not_healthy)" in page
    assert "已回滚" in zh and "推送比例" in zh
