"""A simulated fleet for the fleet page: N terminals sending real heartbeats, some of them faulty.

Used by the 200-terminal page test and the fleet benchmark. Each terminal is a real
:class:`HeartbeatSender` posting signed heartbeats to a running simulator; its devices are
simulator statuses. The mix (per 200): 5 never heard from, 10 with a device down, 10 out of
paper (red), 15 low on paper (amber), the rest working (green).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.hardware.base import DeviceState, SupplyState, status

DISTRICTS = ("历下区", "市中区", "槐荫区", "天桥区", "历城区", "长清区", "章丘区", "济阳区", "莱芜区", "钢城区")
STREETS = ("泉城路", "经十路", "解放路", "和平路", "山大路", "文化东路", "历山路", "工业南路", "二环东路", "花园路")


@dataclass(frozen=True)
class SimulatedFleet:
    """Terminal id -> its secret, and which terminals were made faulty in which way."""

    secrets: dict[str, bytes]
    never_heard: tuple[str, ...]
    device_down: tuple[str, ...]
    paper_out: tuple[str, ...]
    paper_low: tuple[str, ...]

    @property
    def red(self) -> set[str]:
        """Terminals the page must show red."""
        return set(self.never_heard) | set(self.device_down) | set(self.paper_out)

    @property
    def amber(self) -> set[str]:
        """Terminals the page must show amber."""
        return set(self.paper_low)


def plan(count: int = 200, prefix: str = "JN-FLT") -> SimulatedFleet:
    """The terminals and their faults, spread through the id range (so sorting, not the ids, puts them on top)."""
    ids = [f"{prefix}-{i:04d}" for i in range(1, count + 1)]
    scale = count / 200
    picks: dict[str, list[str]] = {"never": [], "down": [], "out": [], "low": []}
    quotas = {"never": round(5 * scale), "down": round(10 * scale), "out": round(10 * scale), "low": round(15 * scale)}
    step = 5  # every fifth terminal is faulty in some way, round-robin over the kinds
    kinds = [k for k in quotas for _ in range(quotas[k])]
    for n, kind in enumerate(kinds):
        picks[kind].append(ids[(n * step + 3) % count])
    return SimulatedFleet({tid: f"fleet-secret-{tid}".encode() for tid in ids}, tuple(picks["never"]),
                          tuple(picks["down"]), tuple(picks["out"]), tuple(picks["low"]))


def devices_of(fleet: SimulatedFleet, terminal_id: str) -> dict[str, Any]:
    """The device statuses terminal ``terminal_id`` reports."""
    paper = (SupplyState.OUT if terminal_id in fleet.paper_out
             else SupplyState.LOW if terminal_id in fleet.paper_low else SupplyState.OK)
    devices = {
        "id_card": status(DeviceState.ONLINE), "pcsc": status(DeviceState.ONLINE),
        "receipt_printer": status(DeviceState.ONLINE, {"paper": paper}),
        "a4_printer": status(DeviceState.ONLINE, {"paper": SupplyState.OK, "toner": SupplyState.OK}),
        "scanner": status(DeviceState.ONLINE), "camera": status(DeviceState.ONLINE),
        "speaker": status(DeviceState.ONLINE),
    }
    if terminal_id in fleet.device_down:
        n = int(terminal_id.rsplit("-", 1)[1])
        devices["camera" if n % 2 else "id_card"] = status(DeviceState.HARDWARE_ERROR if n % 2 else DeviceState.OFFLINE)
    return devices


def send_heartbeats(base_url: str, fleet: SimulatedFleet, state_root: Path) -> int:
    """One heartbeat from every terminal but the never-heard ones; returns how many the backend took."""
    from kiosk.services.backend import BackendClient
    from kiosk.services.heartbeat import HeartbeatSender

    sent = 0
    for n, (tid, secret) in enumerate(sorted(fleet.secrets.items())):
        if tid in fleet.never_heard:
            continue
        client = BackendClient(base_url, tid, secret, DEMO_BACKEND_PUBLIC_KEY, 2.0, 10.0, 0, 0.0)
        district, street = DISTRICTS[n % len(DISTRICTS)], STREETS[n // len(DISTRICTS) % len(STREETS)]
        sender = HeartbeatSender(client, state_root / tid, tid, DEMO_BACKEND_PUBLIC_KEY,
                                 lambda tid=tid: devices_of(fleet, tid), app_version="0.1.0",
                                 started_at=time.time() - 3600 * (1 + n % 50), name=f"{district}{street}24小时智慧警局",
                                 location=f"济南市{district}{street}{n % 90 + 1}号",
                                 last_transaction=lambda n=n: time.time() - 60 * (1 + n % 120))
        sent += sender.beat().sent
    return sent
