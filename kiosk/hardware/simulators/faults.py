"""What every simulator shares: checked options, injectable faults and an optional delay.

A fault's value is ``True`` (on until cleared), ``False``/``0`` (off) or a positive int
``n`` (fires on the next ``n`` operations, then turns itself off: ``card_removed_mid_read
= 1`` in the demo config makes the first read fail and the second succeed). State-like
faults (``offline``, ``paper_out``, ``cover_open``) are simply on while their value is truthy.

Each time a fault is applied to an operation it is counted (``applied()``), so a demo or a
test can say which faults really fired; a state fault merely seen by ``status()`` is not.

Options and faults come from ``DeviceConfig.options`` / ``.faults``; unknown names or
badly typed values raise ConfigError naming ``devices.<name>.options.<key>`` so a typo in
the config is caught at start-up rather than silently ignored.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping

from kiosk.errors import ConfigError


class SimulatedDevice:
    """Mixin for simulator drivers: put it before the device interface in the bases."""

    #: fault names this simulator understands
    FAULTS: frozenset[str] = frozenset()
    #: option name -> default value; the default's type is the accepted type (None: any)
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)  # type: ignore[call-arg]  # Device.__init__ sets name and _lock
        # The simulator's own state has its own lock: Device._lock serialises operations (a
        # receipt job holds it while printing) and status() or inject() must not wait for that.
        self._sim_lock = threading.RLock()
        self._changed = threading.Condition(self._sim_lock)
        self.options: dict[str, Any] = self._check_options(dict(options or {}))
        self._faults: dict[str, bool | int] = {}
        self._applied: dict[str, int] = {}
        self._busy = 0
        for fault, value in (faults or {}).items():
            if fault not in self.FAULTS:
                raise ConfigError(
                    f"devices.{name}.faults.{fault}: unknown fault; known: {', '.join(sorted(self.FAULTS))}",
                    key=f"devices.{name}.faults.{fault}", value=value)
            self._faults[fault] = self._check_fault_value(f"devices.{name}.faults.{fault}", value)

    # --- options -------------------------------------------------------------------
    def _check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        merged = dict(self.OPTIONS)
        for key, value in given.items():
            where = f"devices.{self.name}.options.{key}"  # type: ignore[attr-defined]
            if key not in self.OPTIONS:
                raise ConfigError(f"{where}: unknown option; known: {', '.join(sorted(self.OPTIONS))}",
                                  key=where, value=value)
            default = self.OPTIONS[key]
            if default is not None and not _same_kind(default, value):
                raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}",
                                  key=where, value=value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{where}: must not be negative, got {value!r}", key=where, value=value)
            merged[key] = value
        return merged

    # --- faults --------------------------------------------------------------------
    @staticmethod
    def _check_fault_value(where: str, value: Any) -> bool | int:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value >= 0:
            return value
        raise ConfigError(f"{where}: a fault is true, false or a count of operations, got {value!r}",
                          key=where, value=value)

    def inject(self, fault: str, value: bool | int = True) -> None:
        """Turn a fault on (True), off (False) or on for the next ``value`` operations. Raises ValueError."""
        if fault not in self.FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(self.FAULTS))}")
        checked = self._check_fault_value(fault, value)
        with self._changed:
            self._faults[fault] = checked
            self._changed.notify_all()

    def clear(self, fault: str | None = None) -> None:
        """Turn one fault, or every fault, off."""
        with self._changed:
            if fault is None:
                self._faults.clear()
            else:
                self._faults.pop(fault, None)
            self._changed.notify_all()

    def faults(self) -> dict[str, bool | int]:
        """The faults currently on, with their values."""
        with self._sim_lock:
            return {k: v for k, v in self._faults.items() if v}

    def applied(self) -> dict[str, int]:
        """How many operations each fault has failed (or altered) so far."""
        with self._sim_lock:
            return dict(self._applied)

    def _on(self, fault: str) -> bool:
        """Is ``fault`` on? Does not consume a count (for state-like faults and status)."""
        return bool(self._faults.get(fault))

    def _hit(self, fault: str) -> bool:
        """Is state-like ``fault`` on for this operation? Counted as applied when it is."""
        with self._sim_lock:
            if not self._faults.get(fault):
                return False
            self._applied[fault] = self._applied.get(fault, 0) + 1
            return True

    def _take(self, fault: str) -> bool:
        """Does ``fault`` fire on this operation? Consumes one count when counted; counted as applied."""
        with self._sim_lock:
            value = self._faults.get(fault)
            if not value:
                return False
            if not isinstance(value, bool):
                self._faults[fault] = value - 1
            self._applied[fault] = self._applied.get(fault, 0) + 1
            return True

    # --- timing --------------------------------------------------------------------
    def _pause(self, fraction: float = 1.0) -> None:
        """Sleep ``fraction`` of options.delay_s, without holding the lock, so the demo looks real."""
        delay = float(self.options.get("delay_s") or 0.0) * fraction
        if delay > 0:
            time.sleep(delay)


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))
