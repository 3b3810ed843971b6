"""Simulated speaker: replaces only the sound card, writing each utterance's real audio to a WAV file.

Everything above the card is real: the speech service renders the text with the real
engine and hands the samples here, volume already applied. Each utterance becomes
``<output_dir>/<n>-<seq>.wav`` (the factory points it at ``<state_dir>/speaker``) and a log
line with its masked text; ``played`` lists them. With ``realtime`` (the default) an
utterance "sounds" for its duration, so queueing and interrupting behave as on a card; a
headset is plugged in and out with ``plug_headset()`` (or ``options.headset``). The folder
keeps the newest ``keep`` files, like the A4 simulator's paper tray (``played`` lists those;
``played_total`` counts every one).

Options: output_dir, keep (200; 0 keeps all), realtime, headset, delay_s.
Faults: offline (plays nothing, raises DeviceOffline), no_device (as if unplugged).
"""
from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import DeviceOffline, NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.simulators.faults import SimulatedDevice
from kiosk.hardware.speaker import Audio, Speaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayedUtterance:
    """One utterance that reached the simulated card: its WAV, masked text and length."""

    path: Path
    label: str
    duration_s: float


class SimSpeaker(SimulatedDevice, Speaker):
    """Speaker simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"offline", "no_device"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "output_dir": "", "keep": 200, "realtime": True,
                                  "headset": False}

    _run = itertools.count(1)  # file names stay unique across speakers in one process

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        self.played: list[PlayedUtterance] = []  # the newest ``keep``
        self.played_total = 0  # every utterance that reached the card, never pruned: "has another sounded?"
        self._headset = bool(self.options["headset"])
        self._ends_at = 0.0
        self._skipping = False  # skip_ahead: every utterance sounds at once
        self._prefix = f"{os.getpid()}-{next(self._run)}"
        self._seq = itertools.count(1)
        self._output_dir = Path(self.options["output_dir"]).expanduser() if self.options["output_dir"] else None

    @property
    def output_dir(self) -> Path:
        """Where the WAV files go (a temporary folder when none was configured)."""
        with self._sim_lock:
            if self._output_dir is None:
                self._output_dir = Path(tempfile.mkdtemp(prefix="kiosk-speaker-"))
            self._output_dir.mkdir(parents=True, exist_ok=True)
            return self._output_dir

    def plug_headset(self, plugged: bool = True) -> None:
        """Plug headphones in (or pull them out)."""
        with self._sim_lock:
            self._headset = plugged

    def headset_connected(self) -> bool:
        """Whether the simulated headset is plugged in."""
        with self._sim_lock:
            return self._headset and not self._on("no_device")

    def _start(self, audio: Audio, label: str) -> str:
        """Write the utterance's WAV and start "sounding" it. Raises DeviceOffline, NoDevice."""
        with self._sim_lock:
            if self._on("no_device"):
                raise NoDevice("no sound card", device=self.name)
            if self._take("offline"):
                raise DeviceOffline("sound card does not answer", device=self.name)
            path = self.output_dir / f"{self._prefix}-{next(self._seq):05d}.wav"
        self._pause()
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(audio.to_wav())
        os.replace(tmp, path)
        with self._sim_lock:
            self.played.append(PlayedUtterance(path, label, audio.duration_s))
            self.played_total += 1
            realtime = self.options["realtime"] and not self._skipping
            self._ends_at = time.monotonic() + (audio.duration_s if realtime else 0.0)
            self._prune()
        log.info("speaker %s: %.1f s %r -> %s", self.name, audio.duration_s, label, path.name)
        return str(path)

    def skip_ahead(self, on: bool = True) -> None:
        """Skip the listening (the demo, once its resident has left): with ``on``, what is sounding has sounded
        and what follows sounds at once, each played whole and written to its WAV as ever; off, each utterance
        sounds for its length again."""
        with self._sim_lock:
            self._skipping = on
            if on:
                self._ends_at = 0.0

    def _prune(self) -> None:
        keep = int(self.options["keep"])
        if keep and len(self.played) > keep:
            for old in self.played[:-keep]:
                old.path.unlink(missing_ok=True)
            del self.played[:-keep]

    def _playing(self) -> bool:
        with self._sim_lock:
            return time.monotonic() < self._ends_at

    def _halt(self) -> None:
        with self._sim_lock:
            self._ends_at = 0.0

    def status(self) -> DeviceStatus:
        """No device when unplugged, offline, busy while sounding, else online. Never raises."""
        with self._sim_lock:
            if self._on("no_device"):
                return status(DeviceState.NO_DEVICE, detail="no sound card")
            if self._on("offline"):
                return status(DeviceState.OFFLINE, detail="sound card does not answer")
            conditions = {"headset"} if self._headset else set()
            busy = time.monotonic() < self._ends_at
            return status(DeviceState.BUSY if busy else DeviceState.ONLINE, conditions=conditions)
