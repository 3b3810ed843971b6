"""Speaker (voice guidance audio out): the interface, and the PCM audio it plays.

As with the printers, the high-level operation lives here and a driver implements small
primitives: ``_start(audio)`` hands samples to the sound card, ``_playing()`` says whether
any are still sounding, ``_halt()`` drops what is left. ``play`` blocks its caller (the
speech service's own thread) until the audio has sounded or ``stop()`` is called from any
other thread, which takes effect at once. Volume is applied to the samples before they
reach the driver (``Audio.scaled``), so every driver and the simulator output the same
samples. No Kivy, no backend, no text-to-speech here: a speaker only sounds samples.
"""
from __future__ import annotations

import abc
import io
import math
import threading
import time
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiosk.hardware.base import Device

if TYPE_CHECKING:
    import numpy as np

_POLL_S = 0.005  # how often play() looks whether the card has finished or stop() was called


@dataclass(frozen=True)
class Audio:
    """Mono signed 16-bit little-endian PCM at ``rate`` samples per second."""

    samples: bytes
    rate: int

    @property
    def frames(self) -> int:
        """Number of samples."""
        return len(self.samples) // 2

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.rate if self.rate else 0.0

    def values(self) -> "np.ndarray":
        """The samples as a signed 16-bit array."""
        import numpy as np  # imported on first use: the kiosk's start-up does not wait for it

        return np.frombuffer(self.samples[: self.frames * 2], dtype="<i2")

    def rms_dbfs(self) -> float:
        """Loudness: RMS level in dB relative to full scale (-inf for silence)."""
        import numpy as np

        vals = self.values().astype(np.float64)
        mean_square = float(np.mean(vals * vals)) if vals.size else 0.0
        return 10 * math.log10(mean_square / 32768.0 ** 2) if mean_square else float("-inf")

    def peak_dbfs(self) -> float:
        """Loudest sample in dB relative to full scale (-inf for silence)."""
        import numpy as np

        peak = int(np.max(np.abs(self.values().astype(np.int32)))) if self.frames else 0
        return 20 * math.log10(peak / 32768.0) if peak else float("-inf")

    def scaled(self, gain_db: float) -> "Audio":
        """The same audio ``gain_db`` louder (negative: quieter), clipped to 16 bits."""
        if gain_db == 0:
            return self
        import numpy as np

        vals = np.rint(self.values().astype(np.float64) * 10 ** (gain_db / 20))
        return Audio(np.clip(vals, -32768, 32767).astype("<i2").tobytes(), self.rate)

    def __add__(self, other: "Audio") -> "Audio":
        if other.rate != self.rate:
            raise ValueError(f"cannot join audio of {self.rate} Hz and {other.rate} Hz")
        return Audio(self.samples + other.samples, self.rate)

    @classmethod
    def silence(cls, seconds: float, rate: int) -> "Audio":
        """``seconds`` of silence."""
        return cls(b"\0\0" * int(seconds * rate), rate)

    def to_wav(self) -> bytes:
        """A complete WAV file of this audio."""
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.samples)
        return buf.getvalue()

    @classmethod
    def from_wav(cls, data: bytes) -> "Audio":
        """Read a mono 16-bit WAV. Raises ValueError for anything else."""
        try:
            with wave.open(io.BytesIO(data), "rb") as w:
                if w.getnchannels() != 1 or w.getsampwidth() != 2:
                    raise ValueError("expected mono 16-bit PCM")
                return cls(w.readframes(w.getnframes()), w.getframerate())
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"not a WAV file: {exc}") from None


@dataclass(frozen=True)
class Playback:
    """How one ``play`` ended: sounded to the end or stopped; ``recording`` is the simulator's WAV path."""

    completed: bool
    recording: str = ""

    def __bool__(self) -> bool:
        return self.completed


class Speaker(Device):
    """Sounds voice guidance; knows whether the listening is private (headset or handset)."""

    kind = "speaker"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._stop_requested = threading.Event()
        self._play_lock = threading.Lock()  # one utterance at a time reaches the card

    @abc.abstractmethod
    def _start(self, audio: Audio, label: str) -> str:
        """Hand ``audio`` to the sound card and return at once; returns a recording's path or "".

        ``label`` is the utterance's text as it may be logged (personal data already masked).
        Raises DeviceOffline, NoDevice.
        """

    @abc.abstractmethod
    def _playing(self) -> bool:
        """Whether samples handed over by ``_start`` are still sounding."""

    @abc.abstractmethod
    def _halt(self) -> None:
        """Drop whatever has not sounded yet; the card falls silent."""

    def headset_connected(self) -> bool:
        """Whether the hardware reports headphones plugged in (False where it cannot tell)."""
        return False

    def play(self, audio: Audio, *, label: str = "", cancel: threading.Event | None = None) -> Playback:
        """Sound ``audio``; returns when it has sounded, or at once when ``stop()`` is called or ``cancel`` set.

        ``label`` is the masked text for logs; ``cancel`` stops this one utterance even
        before it reaches the card. Raises DeviceOffline, NoDevice.
        """
        cancel = cancel or threading.Event()
        with self._play_lock:
            self._stop_requested.clear()
            if cancel.is_set():
                return Playback(False)
            recording = self._start(audio, label)
            deadline = time.monotonic() + audio.duration_s + 5.0  # a card that never drains is not waited on forever
            while self._playing():
                if self._stop_requested.wait(_POLL_S) or cancel.is_set():
                    self._halt()
                    return Playback(False, recording)
                if time.monotonic() > deadline:
                    self._halt()
                    break
            return Playback(not (self._stop_requested.is_set() or cancel.is_set()), recording)

    def stop(self) -> None:
        """Silence the speaker at once; the ``play`` in progress (if any) returns False."""
        self._stop_requested.set()
