"""The status model every device reports, and the base every device driver derives from.

Device state is one value; supplies and conditions are sets. "Can this item run now" is a
set test over these (see ``USABLE_STATES``), as OctoPrint does with its printer states.
This module knows nothing of Kivy or the backend.
"""
from __future__ import annotations

import abc
import enum
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


class DeviceState(str, enum.Enum):
    """One value per device: what it can do right now."""

    ONLINE = "online"
    OFFLINE = "offline"
    HARDWARE_ERROR = "hardware_error"
    USER_ERROR = "user_error"  # e.g. cover left open, card held wrongly: a person can fix it
    BUSY = "busy"
    NO_DEVICE = "no_device"


class SupplyState(str, enum.Enum):
    """Level of one consumable (paper, ribbon, toner)."""

    OK = "ok"
    LOW = "low"
    OUT = "out"
    UNKNOWN = "unknown"


USABLE_STATES = frozenset({DeviceState.ONLINE, DeviceState.BUSY})
ERROR_STATES = frozenset({DeviceState.OFFLINE, DeviceState.HARDWARE_ERROR, DeviceState.NO_DEVICE})


@dataclass(frozen=True)
class DeviceStatus:
    """A snapshot of one device: state, supplies by name, and conditions like cover_open or jam."""

    state: DeviceState
    supplies: Mapping[str, SupplyState] = field(default_factory=lambda: MappingProxyType({}))
    conditions: frozenset[str] = frozenset()
    detail: str = ""
    levels: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))  # supply -> 0..1, if reported

    @property
    def usable(self) -> bool:
        """True when the device can take work now (online or busy, no supply out)."""
        return self.state in USABLE_STATES and SupplyState.OUT not in self.supplies.values()

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by `kiosk health --json`, heartbeats and metrics."""
        return {
            "state": self.state.value,
            "supplies": {k: v.value for k, v in sorted(self.supplies.items())},
            "conditions": sorted(self.conditions),
        }


def status(state: DeviceState, supplies: Mapping[str, SupplyState] | None = None,
           conditions: frozenset[str] | set[str] = frozenset(), detail: str = "",
           levels: Mapping[str, float] | None = None) -> DeviceStatus:
    """Build a frozen DeviceStatus from plain values (``levels``: how much of a supply is left, 0..1)."""
    return DeviceStatus(state, MappingProxyType(dict(supplies or {})), frozenset(conditions), detail,
                        MappingProxyType(dict(levels or {})))


class Device(abc.ABC):
    """Base of every driver, real or simulated. ``name`` is the config key of the device."""

    kind: str = "device"

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.RLock()

    def open(self) -> None:
        """Acquire the device. Raises NoDevice or DeviceOffline."""

    def close(self) -> None:
        """Release the device; safe to call twice."""

    @abc.abstractmethod
    def status(self) -> DeviceStatus:
        """Query the device now. Never raises: failures become a state."""

    def __enter__(self) -> "Device":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
