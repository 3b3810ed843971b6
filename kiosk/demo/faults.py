"""What the simulators do to a flow: its scripted faults armed and counted, and their configured delays timed."""
from __future__ import annotations

import threading
import time
from typing import Any

from kiosk.demo.driver import DemoError
from kiosk.demo.flows import ANSWER_LOST, FlowScript
from kiosk.demo.summary import FaultCount


def applied_faults(runtime: Any) -> dict[str, int]:
    """How often each fault was applied so far, as the simulators count it (backend and devices)."""
    counts: dict[str, int] = {}
    if runtime.sim is not None:
        counts.update(runtime.sim.app.faults.applied())
    for _name, device in runtime.devices.all():
        for kind, n in (device.applied() if hasattr(device, "applied") else {}).items():
            counts[kind] = counts.get(kind, 0) + n
    return counts


class ScriptedFaults:
    """One flow's ``fault=`` and ``chip=`` options: switched on in the simulators, off again, and counted."""

    def __init__(self, runtime: Any, script: FlowScript) -> None:
        self.runtime = runtime
        self.script = script
        self.before = applied_faults(runtime)
        self.armed: list[tuple[Any, str]] = []  # (the simulator or the backend's fault knobs, the fault)

    def arm(self, item: Any) -> None:
        """Switch on the flow's scripted faults. Raises DemoError when the simulator they need is not there."""
        for kind in self.script.faults:
            if kind == ANSWER_LOST:
                if self.runtime.sim is None:
                    raise DemoError("fault=answer_lost needs the embedded backend simulator")
                if item.operation:  # an item without an operation has no answer to lose: it never fires
                    self.runtime.sim.app.faults.update({"lose_answers_of": item.operation,
                                                        "lose_answers": self.script.lost})
                    self.armed.append((self.runtime.sim.app.faults, kind))
                continue
            for _name, device in self.runtime.devices.all():
                if kind in getattr(device, "FAULTS", ()):
                    # 1: an event fault fires once; a state fault (paper_out) stays on for the flow.
                    device.inject(kind, 1)
                    self.armed.append((device, kind))
        if self.script.chip:
            chip = self.runtime.devices.get("pcsc")
            if chip is None or self.script.chip not in getattr(chip, "FAULTS", ()):
                raise DemoError(f"chip={self.script.chip} needs the simulated chip reader")
            chip.inject(self.script.chip, 1)
            self.armed.append((chip, self.script.chip))

    def disarm(self) -> None:
        """Switch the flow's scripted faults off again (those that never fired too)."""
        for target, kind in self.armed:
            if kind == ANSWER_LOST:
                target.update({"lose_answers_of": "", "lose_answers": 0})
            else:
                target.clear(kind)
        self.armed = []

    def counts(self) -> list[FaultCount]:
        """The scripted faults (0 when they never fired), then any other that fired."""
        after = applied_faults(self.runtime)
        fired = {k: n - self.before.get(k, 0) for k, n in after.items() if n - self.before.get(k, 0) > 0}
        scripted = list(dict.fromkeys([*self.script.faults, *([self.script.chip] if self.script.chip else [])]))
        return ([FaultCount(k, fired.get(k, 0)) for k in scripted]
                + [FaultCount(k, n) for k, n in sorted(fired.items()) if k not in scripted])


class DeviceDelays:
    """Times every simulator's configured delay (``delay_s`` options), so a flow's machine time can leave it out."""

    def __init__(self, runtime: Any) -> None:
        self.total_s = 0.0
        self._reported_s = 0.0
        lock = threading.Lock()
        for _name, device in runtime.devices.all():
            pause = getattr(device, "_pause", None)
            if pause is None:
                continue

            def timed(fraction: float = 1.0, _pause: Any = pause) -> None:
                started = time.monotonic()
                try:
                    _pause(fraction)
                finally:
                    with lock:
                        self.total_s += time.monotonic() - started
            device._pause = timed

    def since_last(self) -> float:
        """Simulated device delay since the last call (the demo profile configures none)."""
        delta = self.total_s - self._reported_s
        self._reported_s = self.total_s
        return max(0.0, delta)
