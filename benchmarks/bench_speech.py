"""Voice guidance: time from asking for a prompt to its first audio sample at the output, cached and uncached.

The real SDL driver plays into SDL's ``disk`` output (what a sound card would get, written
to a file in real time); a watcher thread reads the file as it grows and notes when the
first non-silent sample of the prompt lands there. "Uncached" prompts are item names never
rendered before in this process (espeak-ng runs for them); "cached" ones were warmed at
start, as the kiosk does. Also printed: render time per prompt and the hand-over to the
card as the service itself measures it. Figures are printed, never asserted.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROUNDS = 12


class _OutputWatcher:
    """Follows SDL's disk output file and notes when a non-silent sample appears after ``arm()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._armed_at = 0.0
        self._heard = threading.Event()
        self.heard_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def arm(self) -> None:
        self._heard.clear()
        self._armed_at = time.perf_counter()

    def wait(self, timeout: float = 10.0) -> float:
        """Milliseconds from arm() to the first non-silent sample (NaN when none came)."""
        if not self._heard.wait(timeout):
            return float("nan")
        return (self.heard_at - self._armed_at) * 1000

    def _run(self) -> None:
        while not self.path.exists():
            time.sleep(0.001)
        with self.path.open("rb") as fh:
            while not self._stop.is_set():
                chunk = fh.read()
                if chunk and self._armed_at and not self._heard.is_set() and chunk.strip(b"\0"):
                    self.heard_at = time.perf_counter()
                    self._heard.set()
                if not chunk:
                    time.sleep(0.0005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def figures() -> dict[str, Any]:
    """Measure and return ``speech_first_sample_ms`` {cached, uncached} (medians) and details."""
    from kiosk.hardware.speaker_sdl import SdlSpeaker
    from kiosk.services.catalog import Catalog
    from kiosk.services.speech import Defaults, SpeechService, fixed_prompts

    out_dir = Path(tempfile.mkdtemp(prefix="kiosk-bench-speech-"))
    raw = out_dir / "card.raw"
    os.environ["SDL_AUDIODRIVER"] = "disk"
    os.environ["SDL_DISKAUDIOFILE"] = str(raw)
    speaker = SdlSpeaker("speaker", {})
    speaker.open()
    speech = SpeechService(speaker, Defaults())
    watcher = _OutputWatcher(raw)
    try:
        speech.warm(fixed_prompts(), background=False)  # as the kiosk does at start (pypinyin loaded too)
        catalog = Catalog.load()
        fresh = [f"{item.name_zh}。" for item in catalog.items][:ROUNDS]  # never rendered: the full stop is new
        warmed = [text for text, lang in fixed_prompts() if lang == "zh_CN"][:ROUNDS]
        results: dict[str, list[float]] = {"uncached": [], "cached": []}
        handover: dict[str, list[float]] = {"uncached": [], "cached": []}
        for kind, texts in (("uncached", fresh), ("cached", warmed)):
            for text in texts:
                speech.wait_idle(30)
                time.sleep(0.05)  # silence on the output between prompts
                watcher.arm()
                speech.say(text, "zh_CN", interrupt=True)
                results[kind].append(watcher.wait())
                time.sleep(0.3)
                speech.interrupt()
                speech.wait_idle(30)
                entry = speech.spoken()[-1]
                if entry.first_sample_ms is not None:
                    handover[kind].append(entry.first_sample_ms)
        t0 = time.perf_counter()
        for text in fresh:
            speech.engine.render(text + "！", "zh_CN")
        render_ms = (time.perf_counter() - t0) / len(fresh) * 1000
    finally:
        watcher.stop()
        speech.close()
        speaker.close()
        raw.unlink(missing_ok=True)
    med = {k: round(statistics.median(v), 1) for k, v in results.items()}
    return {"speech_first_sample_ms": med,
            "speech_first_sample_max_ms": {k: round(max(v), 1) for k, v in results.items()},
            "speech_handover_ms": {k: round(statistics.median(v), 1) for k, v in handover.items() if v},
            "speech_render_ms_per_prompt": round(render_ms, 1),
            "sdl_buffer_ms": round(speaker._buffer_s * 1000, 1)}


def main() -> dict[str, Any]:
    """Print the figures; return them (bench.json's speech_first_sample_ms among them)."""
    f = figures()
    med, worst = f["speech_first_sample_ms"], f["speech_first_sample_max_ms"]
    print(f"speech first sample at the output (SDL disk driver, {ROUNDS} prompts each): "
          f"cached median {med['cached']} ms (max {worst['cached']}), "
          f"uncached median {med['uncached']} ms (max {worst['uncached']})")
    print(f"  hand-over to the card (service's own clock): {f['speech_handover_ms']}; espeak-ng render of an item "
          f"name {f['speech_render_ms_per_prompt']} ms; SDL device buffer {f['sdl_buffer_ms']} ms")
    print("speech_first_sample_ms " + json.dumps(med))
    return f


if __name__ == "__main__":
    main()
