"""What the app needs as it starts: the Chinese font, and work held until the first frame is drawn.

Python threads share one interpreter lock: a warm-up "off the UI thread" (the pinyin index,
the spoken prompts, the embedded simulator's build, the first health poll and heartbeat)
still takes its turns from the UI thread while the window and home screen are being made,
and on a two-core terminal it delayed the first frame by a second. :class:`FirstFrame` starts
such work from the UI clock right after the first frame instead. Like the app's mixins this
module imports no Kivy widget at load.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from kivy.clock import Clock

from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)


def cjk_font() -> str:
    """The WenQuanYi font file the UI draws with (face 0 has Simplified Chinese glyph forms)."""
    for path in FONT_CANDIDATES:
        if Path(path).is_file():
            return path
    raise ConfigError("no Chinese font installed (fonts-wqy-microhei)", key="", value=FONT_CANDIDATES[0])


class FirstFrame:
    """Jobs to run on the UI clock once the window has shown its first frame (at once when it has)."""

    def __init__(self) -> None:
        self.drawn = False
        self._jobs: list[Callable[[], Any]] = []
        self._window: Any = None

    def then(self, job: Callable[[], Any]) -> None:
        """Run ``job`` (quick: it starts threads, it does not do their work) after the first frame."""
        if self.drawn:
            Clock.schedule_once(lambda _dt: self._run((job,)))
        else:
            self._jobs.append(job)

    def watch(self, window: Any) -> None:
        """Wait for ``window``'s first flip (call it once the window exists)."""
        self._window = window
        window.bind(on_flip=self._flipped)

    def _flipped(self, *_args: Any) -> None:
        self._window.unbind(on_flip=self._flipped)
        self.drawn = True
        jobs, self._jobs = tuple(self._jobs), []
        Clock.schedule_once(lambda _dt: self._run(jobs))  # the next tick: this frame is out first

    @staticmethod
    def _run(jobs: tuple[Callable[[], Any], ...]) -> None:
        for job in jobs:
            try:
                job()
            except Exception:  # one failed start must not keep the others from starting
                log.exception("start-up job %s failed", getattr(job, "__name__", job))
