"""Which devices the catalog's items need, and which of them a terminal lacks (disabled, missing or unusable).

A production terminal with a device its items need switched off is not "healthy with some
items unavailable": it is a terminal that cannot do its job. `kiosk health` and
`kiosk-provision selftest` fail on it and list the items that cannot run and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from kiosk.services.health import needed_devices

DISABLED = "disabled"
MISSING = "missing"
UNUSABLE = "unusable"


@dataclass(frozen=True)
class Shortfall:
    """One device the catalog needs that this terminal cannot use, and the items it stops."""

    device: str
    why: str  # DISABLED, MISSING or UNUSABLE
    detail: str  # what a technician reads
    items: tuple[str, ...]  # item ids that cannot run

    def to_dict(self) -> dict[str, Any]:
        """JSON form (`kiosk health --json`, `selftest --json`)."""
        return {"device": self.device, "why": self.why, "detail": self.detail, "items": list(self.items)}


def needed_by_catalog(catalog: Any) -> dict[str, tuple[str, ...]]:
    """Device name -> ids of the items that cannot run without it, in catalog order."""
    needed: dict[str, list[str]] = {}
    for item in catalog.items:
        for device in needed_devices(item):
            needed.setdefault(device, []).append(item.id)
    return {device: tuple(ids) for device, ids in needed.items()}


def shortfalls(cfg: Any, catalog: Any, statuses: Mapping[str, Any] | None = None) -> list[Shortfall]:
    """Every needed device that is disabled in ``cfg``, absent from ``statuses`` or not usable there.

    ``statuses`` None checks the config alone (no device opened).
    """
    out: list[Shortfall] = []
    for device, items in needed_by_catalog(catalog).items():
        dev = cfg.devices.get(device)
        if dev is None or not dev.enabled:
            out.append(Shortfall(device, DISABLED, f"{device} is disabled in the config ([devices.{device}] "
                                                   "enabled = false); set its driver (kiosk-provision detect)", items))
        elif statuses is not None and device not in statuses:
            out.append(Shortfall(device, MISSING, f"{device} did not start (driver {dev.driver})", items))
        elif statuses is not None and not getattr(statuses[device], "usable", True):
            state = getattr(getattr(statuses[device], "state", None), "value", "?")
            out.append(Shortfall(device, UNUSABLE, f"{device} is {state}", items))
    return out


def describe(found: list[Shortfall], catalog: Any, lang: str = "en") -> list[str]:
    """Lines for a technician: per device why, then each item that cannot run with its name."""
    lines: list[str] = []
    for s in found:
        lines.append(f"{s.detail}: {len(s.items)} items cannot run")
        for item_id in s.items:
            item = catalog.get(item_id)
            name = item.name_en if lang == "en" else item.name_zh
            lines.append(f"    {item_id} {name}: {s.device}_unavailable")
    return lines
