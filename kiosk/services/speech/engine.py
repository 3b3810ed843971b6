"""Text to speech with espeak-ng (offline, Mandarin and English), and a cache of rendered prompts.

``EspeakEngine.render(text, lang, rate)`` turns an utterance into PCM: ``reading.segments``
splits it into Mandarin (tone-numbered pinyin, voice ``cmn-latn-pinyin``) and English
(voice ``en-us``) stretches, each rendered by one ``espeak-ng --stdout`` process and joined
with a short pause. A process per render keeps a crash or a hang of the engine out of the
kiosk's process and costs about 20 ms. ``PromptCache`` keeps rendered audio per
(language, voice, rate, text) within a byte budget, so a prompt heard before reaches the
speaker without rendering. ``phonemes`` gives espeak-ng's phoneme mnemonics (``-x``) for the
tests that check every Chinese string is read as Mandarin syllables. No Kivy here.
"""
from __future__ import annotations

import logging
import mmap
import shutil
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass

from kiosk.errors import KioskError
from kiosk.hardware.speaker import Audio
from kiosk.services.speech.reading import Segment, segments

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
VOICE_ZH = "cmn-latn-pinyin"  # reads tone-numbered pinyin; the `cmn` voice reads tone digits in English
VOICE_EN = "en-us"
RATE = 160  # words a minute: espeak's default is 175; a little slower for residents who hear less well
RATE_RANGE = (80, 320)
SAMPLE_RATE = 22050
_GAP_S = 0.12  # pause between a Mandarin and an English stretch
_TIMEOUT_S = 15.0


class SpeechUnavailable(KioskError):
    """The speech engine is missing or failed; the kiosk goes on without voice."""

    code = "speech_unavailable"
    message_en = "Voice guidance is not available right now."
    exit_status = 69


@dataclass(frozen=True)
class Voices:
    """The engine voice for each kind of segment."""

    zh: str = VOICE_ZH
    en: str = VOICE_EN

    def for_segment(self, segment: Segment) -> str:
        """The espeak-ng voice that reads ``segment``."""
        return self.zh if segment.voice == "zh" else self.en

    def name(self, lang: str) -> str:
        """The main voice of ``lang`` (part of a cache key)."""
        return self.zh if lang.startswith("zh") else self.en


def pcm_from_wav_stream(data: bytes) -> Audio:
    """espeak-ng's ``--stdout`` WAV (written before its length is known) as Audio. Raises SpeechUnavailable."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechUnavailable("espeak-ng did not write a WAV stream")
    fmt = data.find(b"fmt ")
    at = data.find(b"data", 12)
    if fmt < 0 or at < 0:
        raise SpeechUnavailable("espeak-ng's WAV stream has no fmt or data chunk")
    channels = int.from_bytes(data[fmt + 10:fmt + 12], "little")
    rate = int.from_bytes(data[fmt + 12:fmt + 16], "little")
    bits = int.from_bytes(data[fmt + 22:fmt + 24], "little")
    if channels != 1 or bits != 16:
        raise SpeechUnavailable(f"espeak-ng wrote {channels} channels of {bits} bits, expected mono 16-bit")
    samples = data[at + 8:]
    return Audio(samples[: len(samples) // 2 * 2], rate)


class EspeakEngine:
    """Renders utterances with the espeak-ng program."""

    def __init__(self, voices: Voices | None = None, program: str = ESPEAK) -> None:
        self.voices = voices or Voices()
        self.program = program

    def available(self) -> bool:
        """Whether the espeak-ng program is installed."""
        return shutil.which(self.program) is not None

    def _run(self, args: list[str], text: str) -> bytes:
        try:
            done = subprocess.run([self.program, *args, "--", text], capture_output=True, timeout=_TIMEOUT_S,
                                  check=False)
        except FileNotFoundError:
            raise SpeechUnavailable(f"{self.program} is not installed (apt package espeak-ng)") from None
        except subprocess.TimeoutExpired:
            raise SpeechUnavailable(f"{self.program} did not finish within {_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            raise SpeechUnavailable(f"{self.program} failed ({done.returncode}): "
                                    f"{done.stderr.decode(errors='replace').strip()[:200]}")
        return done.stdout

    def render_segment(self, segment: Segment, rate: int = RATE) -> Audio:
        """One segment's audio. Raises SpeechUnavailable."""
        rate = max(RATE_RANGE[0], min(RATE_RANGE[1], int(rate)))
        return pcm_from_wav_stream(self._run(["-v", self.voices.for_segment(segment), "-s", str(rate), "--stdout"],
                                             segment.text))

    def render(self, text: str, lang: str, rate: int = RATE) -> Audio:
        """The whole utterance's audio (silence for text with nothing to say). Raises SpeechUnavailable."""
        parts = [self.render_segment(seg, rate) for seg in segments(text, lang)]
        if not parts:
            return Audio.silence(0.05, SAMPLE_RATE)
        audio = parts[0]
        for part in parts[1:]:
            audio = audio + Audio.silence(_GAP_S, audio.rate) + part
        return audio

    def phonemes(self, text: str, lang: str) -> list[tuple[Segment, str]]:
        """espeak-ng's phoneme mnemonics (``-q -x``) of each segment of ``text``. Raises SpeechUnavailable."""
        return [(seg, self._run(["-v", self.voices.for_segment(seg), "-q", "-x"], seg.text).decode().strip())
                for seg in segments(text, lang)]


@dataclass(frozen=True)
class CacheKey:
    """What identifies a rendered prompt."""

    lang: str
    voice: str
    rate: int
    text: str


class _Held:
    """One kept prompt: its samples in an anonymous mapping of their own, and its rate."""

    __slots__ = ("_map", "rate", "size")

    def __init__(self, audio: Audio) -> None:
        self.size, self.rate = len(audio.samples), audio.rate
        self._map = mmap.mmap(-1, max(1, self.size))  # a mapping cannot be empty
        self._map.write(audio.samples)

    def audio(self) -> Audio:
        """A copy of the kept audio (the mapping may be closed while the copy plays)."""
        return Audio(self._map[: self.size], self.rate)

    def close(self) -> None:
        """The mapping back to the system."""
        self._map.close()


class PromptCache:
    """Rendered audio per (language, voice, rate, text), least recently used dropped past ``max_bytes``.

    Each prompt's samples are kept in an anonymous mapping of their own (``_Held``), not in the C heap. Kept
    prompts live for hours and are dropped in no order, most of them below the 128 KiB from which glibc maps a
    block on its own (a 2.9 s prompt at 22,050 Hz): in the heap, each one dropped leaves a hole between the
    blocks that outlive it, and the heap's resident pages grew with the holes while the cache stayed at its
    bound (UI soak: malloc's free memory 22 -> 59 MiB over sessions 20 to 140). A mapping goes back to the
    system whole when its prompt is dropped. A hit hands out a copy (a few hundred KiB at most) that lives as
    long as the prompt is played."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[CacheKey, _Held] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> Audio | None:
        """The audio for ``key``, or None."""
        with self._lock:
            held = self._items.get(key)
            if held is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return held.audio()

    def put(self, key: CacheKey, audio: Audio) -> None:
        """Keep ``audio`` for ``key``, dropping the least recently used past the budget."""
        held = _Held(audio)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
                old.close()
            self._items[key] = held
            self._bytes += held.size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.size
                dropped.close()

    def __contains__(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def size_bytes(self) -> int:
        """Bytes of audio held."""
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            for held in self._items.values():
                held.close()
            self._items.clear()
            self._bytes = 0
