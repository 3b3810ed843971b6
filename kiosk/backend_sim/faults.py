"""Fault knobs of the simulator: latency, random failures, and deterministic "fail the next N".

Modes: ``error`` (503 before anything happens), ``timeout`` (the request is carried out,
then the answer stalls ``timeout_s`` seconds: the side effect happened but the caller
timed out, the case idempotent retries exist for), ``garbage`` (a signed body that is not
JSON), ``tamper`` (a body altered after signing), ``down`` (the connection is dropped
without an answer).

``lose_answers_of`` names an operation whose answers get lost: the request is carried out
and its answer stored as usual, then the connection is dropped instead of answering, for
the next ``lose_answers`` answers of that operation (replays of a repeated key included;
-1: every one). That is the answer lost on the way back that makes a paid operation's
outcome unknown to the kiosk.

Every fault is counted each time it is applied (``slow``: a request held up by ``latency_ms``) (``applied()``, GET /sim/faults/applied),
so a scripted fault that never fired shows 0.
"""
from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass
from typing import Any

MODES = ("error", "timeout", "garbage", "tamper", "down")


@dataclass
class Faults:
    """The knobs; rates are probabilities per API request."""

    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    garbage_rate: float = 0.0
    tamper_rate: float = 0.0
    timeout_s: float = 5.0
    fail_next: int = 0
    mode: str = "error"
    seed: int | None = None
    lose_answers_of: str = ""
    lose_answers: int = 0


class FaultState:
    """The knobs in force, shared by the request threads."""

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()
        self._rng = random.Random()
        self._applied: dict[str, int] = {}
        if initial:
            self.update(initial)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply some knobs (``reset`` true restores the defaults first); return all knobs. Raises ValueError."""
        changes = dict(changes)
        known = {f.name for f in dataclasses.fields(Faults)}
        reset = bool(changes.pop("reset", False))
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault knob {sorted(unknown)[0]!r}")
        if "mode" in changes and changes["mode"] not in MODES:
            raise ValueError(f"unknown fault mode {changes['mode']!r}")
        if int(changes.get("lose_answers", 0)) < -1:
            raise ValueError("lose_answers is a count, or -1 for every answer")
        with self._lock:
            base = Faults() if reset else self._faults
            self._faults = dataclasses.replace(base, **changes)
            if "seed" in changes or reset:
                self._rng = random.Random(self._faults.seed)
            return dataclasses.asdict(self._faults)

    def snapshot(self) -> dict[str, Any]:
        """All knobs as a dict."""
        with self._lock:
            return dataclasses.asdict(self._faults)

    def applied(self) -> dict[str, int]:
        """How many times each fault was applied since the simulator started (``answer_lost``, ``slow``, the modes)."""
        with self._lock:
            return dict(self._applied)

    def lose_answer(self, operation: str) -> bool:
        """Whether the answer to this run of ``operation`` is to be lost (counted when it is)."""
        with self._lock:
            f = self._faults
            if not f.lose_answers or f.lose_answers_of != operation:
                return False
            if f.lose_answers > 0:
                self._faults = dataclasses.replace(f, lose_answers=f.lose_answers - 1)
            self._applied["answer_lost"] = self._applied.get("answer_lost", 0) + 1
            return True

    def draw(self) -> tuple[str | None, float, float]:
        """For one API request: (fault mode or None, latency in s, stall in s for a timeout)."""
        with self._lock:
            f = self._faults
            mode: str | None = None
            if f.fail_next > 0:
                self._faults = dataclasses.replace(f, fail_next=f.fail_next - 1)
                mode = f.mode
            else:
                roll = self._rng.random()
                for name, rate in (("error", f.error_rate), ("timeout", f.timeout_rate),
                                   ("garbage", f.garbage_rate), ("tamper", f.tamper_rate)):
                    if roll < rate:
                        mode = name
                        break
                    roll -= rate
            if mode is not None:
                self._applied[mode] = self._applied.get(mode, 0) + 1
            if f.latency_ms > 0:  # a slow answer is a fault applied too (the soak counts it)
                self._applied["slow"] = self._applied.get("slow", 0) + 1
            return mode, f.latency_ms / 1000.0, f.timeout_s
