"""`kiosk health`: build the configured devices and backend, poll once, report (exit 1 when something is down)."""
from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from typing import Any, Callable

from kiosk.errors import KioskError
from kiosk.services.health import DiskGuard, HealthMonitor, HealthSnapshot

log = logging.getLogger("kiosk.services.health")
# backend URL -> why its last probe failed (the error code and detail), for the report
BACKEND_DOWN_REASON: dict[str, str] = {}


def check_config(cfg: Any, *, statvfs: Callable[[str], Any] = os.statvfs) -> HealthSnapshot:
    """Build devices and backend from ``cfg`` (demo: simulators and the embedded backend), poll once, close."""
    from kiosk.hardware.factory import build_devices
    from kiosk.services.backend import BackendClient
    from kiosk.services.catalog import Catalog

    sim = None
    url = cfg.backend.url
    if url == "embedded":
        from kiosk.backend_sim.server import serve

        sim = serve("127.0.0.1", 0)  # in memory: a health check must not touch the kiosk's own sim DB
        cfg = cfg.model_copy(update={"backend": cfg.backend.model_copy(update={"url": sim.url})})
    devices = None
    touch: Any = None
    try:
        devices = build_devices(cfg)
        for name, device in devices.all():
            try:
                device.open()
            except KioskError as err:  # reported through its status below
                log.warning("device %s did not open: %s", name, err.code)
        client = BackendClient.from_config(cfg)

        def probe() -> bool:
            try:
                answer = client.health()
            except KioskError as err:
                log.warning("backend health: %s", err.code)
                BACKEND_DOWN_REASON[url] = f"{err.code}: {err.detail or err.message('en')}"
                return False
            except OSError as exc:  # e.g. the pinned CA file is missing
                BACKEND_DOWN_REASON[url] = str(exc)
                return False
            ok = isinstance(answer, dict) and answer.get("status") == "ok"
            if not ok:
                BACKEND_DOWN_REASON[url] = f"the backend answered status {answer.get('status')!r}, not 'ok'"
            return ok

        monitor = HealthMonitor(Catalog.load(), devices, probe, backend_url=url,
                                disk=DiskGuard.from_config(cfg, statvfs=statvfs), terminal_id=cfg.terminal.id)
        if cfg.touch.enabled:  # a second non-grabbing reader beside the running kiosk's: one check
            from kiosk.services.touch_supervisor import NAME, TouchSupervisor

            touch = TouchSupervisor.from_config(cfg.touch)
            touch.check()
            monitor.sources[NAME] = touch
        return monitor.poll()
    finally:
        if touch is not None:
            touch.stop()
        if devices is not None:
            for _name, device in devices.all():
                try:
                    device.close()
                except KioskError:
                    pass
        if sim is not None:
            sim.stop()


def _print_table(snap: HealthSnapshot, data: dict[str, Any]) -> None:
    print(f"terminal {snap.terminal_id} ({data['profile']}): {'OK' if data['healthy'] else 'PROBLEM'}")
    for name, st in sorted(snap.devices.items()):
        supplies = ", ".join(f"{k}={v.value}" for k, v in sorted(st.supplies.items()))
        conditions = ", ".join(sorted(st.conditions))
        extra = "; ".join(x for x in (supplies, conditions) if x)
        print(f"  {'ok  ' if st.usable else 'DOWN'} {name:<16} {st.state.value}{f' ({extra})' if extra else ''}")
    reason = data["backend"].get("reason")
    print(f"  {'ok  ' if snap.backend_up else 'DOWN'} {'backend':<16} {snap.backend_url}"
          + (f": {reason}" if reason else ""))
    if snap.disk is not None:
        d = snap.disk
        print(f"  {'LOW ' if d.low else 'ok  '} {'disk':<16} {d.free_mb:.0f} MB free of {d.total_mb:.0f} MB "
              f"(floor {d.min_free_mb} MB) at {d.path}")
    if snap.out_of_service:
        print(f"  OUT OF SERVICE: {snap.out_of_service_reason}")
    if snap.unavailable:
        counts = Counter(snap.unavailable.values())
        print(f"  {len(snap.unavailable)} items unavailable: "
              + ", ".join(f"{r} ({n})" for r, n in sorted(counts.items())))


def report(cfg: Any, snap: HealthSnapshot, catalog: Any) -> dict[str, Any]:
    """The `kiosk health --json` object: the snapshot, plus (production) the needed devices it lacks.

    A production terminal missing a device its items need is not healthy, whatever else is fine.
    """
    from kiosk.services.readiness import shortfalls

    lacking = shortfalls(cfg, catalog, snap.devices) if cfg.profile == "production" else []
    data = snap.to_dict()
    data.update(profile=cfg.profile, healthy=snap.healthy and not lacking,
                devices_lacking=[s.to_dict() for s in lacking])
    if not snap.backend_up:
        data["backend"]["reason"] = snap_reason(snap)
    return data


def snap_reason(snap: HealthSnapshot) -> str:
    """Why the backend counts as down, for the technician ('' when it is up)."""
    if snap.backend_up:
        return ""
    return BACKEND_DOWN_REASON.get(snap.backend_url, "")


def cli_health(args: argparse.Namespace) -> int:
    """`kiosk health [--json]`: devices, backend, disk and unavailable items; exit 1 when something is down."""
    from kiosk.config import load
    from kiosk.services.catalog import Catalog
    from kiosk.services.readiness import Shortfall, describe

    cfg = load(getattr(args, "config", None))
    snap = check_config(cfg)
    catalog = Catalog.load()
    data = report(cfg, snap, catalog)
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_table(snap, data)
        lacking = [Shortfall(d["device"], d["why"], d["detail"], tuple(d["items"])) for d in data["devices_lacking"]]
        for line in describe(lacking, catalog):
            print(f"  {line}")
        if lacking:
            print("  PROBLEM: the production profile needs these devices; run `kiosk-provision init --detect` "
                  "or set each device's driver")
    return 0 if data["healthy"] else 1
