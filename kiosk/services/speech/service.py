"""The speech service screens call: say, interrupt, repeat, volume, rate, private listening, a log.

``say`` returns at once: utterances queue for the service's own thread, which renders each
(from the prompt cache when it was heard before), applies the resident's volume and hands
the samples to the ``Speaker``. ``interrupt`` (any key or touch) stops the one sounding and
drops the queue at once. Volume steps through the station's levels, rate through its
steps; ``end_session`` puts both, the read-out level and private listening back to the
station's defaults and forgets what was said. Personal data is spoken only while listening
is private: the station's handset, a headset the speaker reports, or ``set_private(True)``.
Every utterance is logged (``spoken()``, ``listeners``) with the WAV the simulator wrote.
No Kivy here.
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from kiosk.errors import KioskError
from kiosk.hardware.speaker import Audio, Speaker
from kiosk.i18n import normalize, translate
from kiosk.services.speech.engine import RATE_RANGE, SAMPLE_RATE, CacheKey, EspeakEngine, PromptCache, Voices
from kiosk.services.speech.utterance import Level, Part, Utterance, compose

log = logging.getLogger(__name__)

_CLAUSE_GAP_S = 0.06  # espeak ends each clause with its own pause; this only separates them
_CLAUSE_END = re.compile(r"(?<=[，。！？；：、])|(?<=[,.!?;:])\s+")


def clauses(text: str) -> list[str]:
    """``text`` cut after each clause's punctuation ("1,000" and "3.5" stay whole)."""
    return [c.strip() for c in _CLAUSE_END.split(text) if c.strip(" ，。！？；：、,.!?;:")]


@dataclass(frozen=True)
class Spoken:
    """One utterance as the log keeps it: the words (personal data only if it was private), the WAV."""

    text: str
    lang: str
    level: str
    audio: str = ""  # the simulator's WAV of it ("" on a real card, or when it never sounded)
    completed: bool = False  # sounded to the end (False: interrupted, dropped, or no speaker)
    first_sample_ms: float | None = None  # from say() to the samples handed to the card
    cached: bool = False  # rendered before, taken from the prompt cache
    private: bool = False


@dataclass(eq=False)
class _Job:
    utterance: Utterance
    private: bool
    rate: int
    gain_db: float
    asked_at: float
    seq: int
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Defaults:
    """The station's defaults a session starts from ([speech] in the config)."""

    voice: Level = "main"
    volume_levels_db: tuple[float, ...] = (-20.0, -14.0, -8.0, -4.0, 0.0)
    volume_level: int = 0
    rate_wpm: int = 160
    rate_step_wpm: int = 20
    private_handset: bool = False
    language: str = "zh_CN"


class SpeechService:
    """Voice guidance for one terminal."""

    def __init__(self, speaker: Speaker | None, defaults: Defaults | None = None, *,
                 engine: EspeakEngine | None = None, cache: PromptCache | None = None, enabled: bool = True) -> None:
        self.speaker = speaker
        self.defaults = defaults or Defaults()
        self.engine = engine if engine is not None else EspeakEngine()
        # Not `cache or ...`: an empty cache has a length of 0, is false, and was replaced by a 64 MiB default
        # (speech.cache_mb was never applied).
        self.cache = cache if cache is not None else PromptCache()
        self.enabled = enabled
        self.listeners: list[Callable[[Spoken], None]] = []  # called as each utterance ends (demo summary)
        self._lock = threading.RLock()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._current: _Job | None = None
        self._pending: list[_Job] = []
        self._log: dict[int, Spoken] = {}
        self._seq = 0
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._last: Utterance | None = None
        self._reset_state()
        self._thread = threading.Thread(target=self._run, name="kiosk-speech", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, cfg: Any, speaker: Speaker | None) -> "SpeechService":
        """The service for ``cfg``'s [speech] defaults and screen language, speaking on ``speaker``."""
        sp = cfg.speech
        defaults = Defaults(sp.voice, tuple(sp.volume_levels_db), sp.volume_level, sp.rate_wpm, sp.rate_step_wpm,
                            sp.private_handset, normalize(cfg.ui.language))
        return cls(speaker, defaults, engine=EspeakEngine(Voices(sp.voice_zh, sp.voice_en)),
                   cache=PromptCache(sp.cache_mb * 1024 * 1024), enabled=sp.enabled)

    def _reset_state(self) -> None:
        d = self.defaults
        self.language = d.language
        self.readout: Level = d.voice
        self.volume_level = d.volume_level
        self.rate = d.rate_wpm
        self._private_override: bool | None = None

    # --- what screens call ---------------------------------------------------------------
    def say(self, text: "str | Sequence[Part] | Utterance", lang: str | None = None, *, level: Level = "main",
            interrupt: bool = False) -> bool:
        """Queue ``text`` to be spoken in ``lang`` (default: the current language); returns at once.

        ``level="full"`` utterances (every control and line) are spoken only while full
        read-out is on; ``interrupt=True`` first stops what is sounding and drops the queue
        (a new screen). Returns whether it was queued.
        """
        utterance = Utterance.of(text, normalize(lang or self.language), level)
        if utterance.level == "full" and self.readout != "full":
            return False
        with self._lock:
            if interrupt:
                self._interrupt_locked()
            if not self.enabled:
                return False
            self._seq += 1
            job = _Job(utterance, self.private, self.rate, self.volume_db, time.perf_counter(), self._seq)
            self._log[job.seq] = self._entry(job)
            self._pending.append(job)
            self._busy += 1
            self._last = utterance
        self._queue.put(job)
        return True

    @staticmethod
    def _entry(job: _Job) -> Spoken:
        utterance = job.utterance
        return Spoken(utterance.text(job.private), utterance.lang, utterance.level, private=job.private)

    def say_msg(self, msgid: str, lang: str | None = None, *, level: Level = "main", interrupt: bool = False,
                **values: Any) -> bool:
        """Translate the English ``msgid`` into ``lang`` and say it, ``values`` filling its placeholders."""
        lang = normalize(lang or self.language)
        return self.say(compose(translate(msgid, lang), **values), lang, level=level, interrupt=interrupt)

    def interrupt(self) -> None:
        """Stop speaking at once and drop everything queued (any key or touch)."""
        with self._lock:
            self._interrupt_locked()

    def _interrupt_locked(self) -> None:
        for job in self._pending:
            job.cancel.set()
        if self._current is not None:
            self._current.cancel.set()
        if self.speaker is not None:
            self.speaker.stop()

    def repeat(self) -> bool:
        """Say the last utterance again, now (with the current volume, rate and privacy)."""
        with self._lock:
            last = self._last
        return last is not None and self.say(last, interrupt=True)

    @property
    def volume_db(self) -> float:
        """The current volume level in dB (relative to the engine's full level)."""
        return self.defaults.volume_levels_db[self.volume_level]

    def volume_up(self) -> float:
        """One level louder (stays at the top); returns the new level in dB."""
        with self._lock:
            self.volume_level = min(self.volume_level + 1, len(self.defaults.volume_levels_db) - 1)
            return self.volume_db

    def volume_down(self) -> float:
        """One level quieter (stays at the bottom); returns the new level in dB."""
        with self._lock:
            self.volume_level = max(self.volume_level - 1, 0)
            return self.volume_db

    def set_rate(self, wpm: int) -> int:
        """Speak at ``wpm`` words a minute (kept within the engine's range); returns the rate set."""
        with self._lock:
            self.rate = max(RATE_RANGE[0], min(RATE_RANGE[1], int(wpm)))
            return self.rate

    def faster(self) -> int:
        """One rate step faster; returns the new rate."""
        return self.set_rate(self.rate + self.defaults.rate_step_wpm)

    def slower(self) -> int:
        """One rate step slower; returns the new rate."""
        return self.set_rate(self.rate - self.defaults.rate_step_wpm)

    def set_language(self, lang: str) -> None:
        """Speak in ``lang`` from now on (the screen's language changed)."""
        self.language = normalize(lang)

    def set_readout(self, level: Level) -> None:
        """``full``: every control and line is spoken (语音引导, a keypad key); ``main``: main prompts only."""
        if level not in ("main", "full"):
            raise ValueError(f"read-out is 'main' or 'full', not {level!r}")
        self.readout = level

    def set_private(self, on: bool | None) -> None:
        """Force private listening on or off for this session; None follows the handset and headset."""
        self._private_override = on

    @property
    def private(self) -> bool:
        """Whether personal data may be spoken now."""
        if self._private_override is not None:
            return self._private_override
        if self.defaults.private_handset:
            return True
        try:
            return self.speaker is not None and self.speaker.headset_connected()
        except Exception:  # a jack that cannot be read is not private
            return False

    def end_session(self) -> None:
        """Stop speaking; volume, rate, read-out and privacy back to the station's defaults; forget what was said."""
        with self._lock:
            self._interrupt_locked()
            self._reset_state()
            self._last = None
            self._log.clear()

    def spoken(self) -> list[Spoken]:
        """This session's utterances, in the order they were asked for."""
        with self._lock:
            return [self._log[k] for k in sorted(self._log)]

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued or sounding (demo and tests); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return True

    # --- prompt cache -------------------------------------------------------------------
    def render(self, utterance: Utterance, private: bool = False, rate: int | None = None) -> tuple[Audio, bool]:
        """(audio, all_cached) for ``utterance``, rendered clause by clause through the prompt cache.

        Each clause ("户籍证明，", "第2步，共5步。") is cached on its own, so a screen's heading,
        step and instruction are ready however a screen joins them; a clause carrying
        personal data spoken privately is never kept. Raises SpeechUnavailable.
        """
        rate = self.rate if rate is None else rate
        voice = self.engine.voices.name(utterance.lang)
        personal = private and utterance.personal
        pieces: list[Audio] = []
        all_cached = True
        for clause in clauses(utterance.engine_text(private)):
            key = CacheKey(utterance.lang, voice, rate, clause)
            audio = self.cache.get(key)
            if audio is None:
                all_cached = False
                audio = self.engine.render(clause, utterance.lang, rate)
                if not personal:  # a resident's name is never kept past its utterance
                    self.cache.put(key, audio)
            pieces.append(audio)
        if not pieces:
            return Audio.silence(0.05, SAMPLE_RATE), True
        out = pieces[0]
        for piece in pieces[1:]:
            out = out + Audio.silence(_CLAUSE_GAP_S, out.rate) + piece
        return out, all_cached

    def warm(self, prompts: Iterable[tuple[str, str]], *, background: bool = True) -> threading.Thread | None:
        """Render (text, lang) prompts into the cache at the default rate, in a thread when ``background``."""
        items = list(prompts)

        def run() -> None:
            started = time.perf_counter()
            try:
                for text, lang in items:
                    self.render(Utterance.of(text, normalize(lang)), rate=self.defaults.rate_wpm)
            except KioskError as err:
                log.warning("speech warm-up stopped: %s (%s)", err.code, err.detail)
                return
            log.info("speech: %d prompts rendered in %.1f s", len(items), time.perf_counter() - started)

        if not background:
            run()
            return None
        thread = threading.Thread(target=run, name="kiosk-speech-warm", daemon=True)
        thread.start()
        return thread

    # --- the speaking thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job in self._pending:
                    self._pending.remove(job)
                self._current = job
            try:
                self._speak(job)
            except Exception:  # the speaking thread must outlive any one utterance
                log.exception("speech: utterance failed")
            finally:
                with self._idle:
                    self._current = None
                    self._busy -= 1
                    self._idle.notify_all()

    def _speak(self, job: _Job) -> None:
        result: dict[str, Any] = {}
        try:
            if job.cancel.is_set():
                return
            audio, cached = self.render(job.utterance, job.private, job.rate)
            result["cached"] = cached
            if job.cancel.is_set() or self.speaker is None:
                return
            audio = audio.scaled(job.gain_db)
            result["first_sample_ms"] = (time.perf_counter() - job.asked_at) * 1000
            played = self.speaker.play(audio, label=job.utterance.log_text(), cancel=job.cancel)
            result.update(audio=played.recording, completed=played.completed)
        except KioskError as err:
            log.warning("speech: %s (%s)", err.code, err.detail)
        finally:
            self._finish(job, result)

    def _finish(self, job: _Job, result: dict[str, Any]) -> None:
        with self._lock:
            entry = self._log.get(job.seq)
            if entry is None:  # the session ended meanwhile: its log is gone, the listeners still hear of it
                entry = replace(self._entry(job), **result)
            else:
                entry = replace(entry, **result)
                self._log[job.seq] = entry
            listeners = list(self.listeners)
        for listener in listeners:
            try:
                listener(entry)
            except Exception:  # a broken listener must not silence the kiosk
                log.exception("speech listener failed")

    def close(self) -> None:
        """Stop speaking and end the thread; safe to call twice."""
        self.interrupt()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
