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


# The screens a visit goes through, in the order the flagship flows meet them; each is built at rest by ScreenWarmer.
WARM_SCREENS = ("guide", "identify", "form", "confirm", "printing", "done", "payment", "face", "category", "error")
WARM_STILL_S = 1.0  # nobody has touched the kiosk for this long: a screen may be built now
WARM_RETRY_S = 1.0  # someone is at the kiosk: look again this much later


class ScreenWarmer:
    """Builds the screens a visit goes through before a resident asks for them: one a frame, only while the kiosk
    stands at rest (home on show, no visit, nothing busy, no touch for ``WARM_STILL_S``); then, at rest again,
    renders a specimen document so the printing stack is loaded too (``Printing.warm_up``).

    Otherwise a screen is made (its .kv rules applied, its widgets and bindings created) in the frame that answers
    the touch that first asks for it: 10-35 ms each (the form, with its keyboard panel, 35), and a full garbage
    collection its allocations set off could add 150-300 ms (the form once took 274 ms), so the first resident
    after a restart waited longer at every step than the next. Built at rest, they also come before
    home's tidy, which sets the survivors aside from the automatic garbage collections (kiosk.services.heap): a
    screen built later is walked by every full collection until the tidy after it."""

    def __init__(self, app: Any, names: tuple[str, ...] = WARM_SCREENS, *, printing: bool = True) -> None:
        self.app = app
        self.left = list(names)
        self.printed = not printing  # the printing stack warmed (Printing.warm_up) after the screens

    def start(self) -> None:
        """Begin (from the UI clock: after the first frame, see FirstFrame.then)."""
        self._later(0)

    def _later(self, seconds: float) -> None:
        # A lambda, not the bound method: Kivy's clock holds a method only weakly, and nothing else holds the warmer.
        Clock.schedule_once(lambda dt: self._next(dt), seconds)

    def at_rest(self) -> bool:
        """Nobody is using the kiosk: home on show, no visit, no service call, no touch for ``WARM_STILL_S``; and
        the first availability answer is in (the simulator's build and the first health poll go first: they
        decide what home offers, and sharing the interpreter with them put that answer back by 0.8 s)."""
        app = self.app
        return (app.availability > 0 and app.sm is not None and app.sm.current == "home" and app.txn is None
                and not app.busy and app.attract_idle_s() >= WARM_STILL_S)

    def _next(self, _dt: float) -> None:
        if not self.left and self.printed:
            return
        if not self.at_rest():
            self._later(WARM_RETRY_S)
            return
        if self.left:
            self._build(self.left.pop(0))
            self._later(0)  # the next frame: one screen, or the printing, a frame
        else:
            self.printed = True
            self._print()

    def _build(self, name: str) -> None:
        try:
            self.app.screen(name)
        except Exception:  # a screen that cannot be built now is built (and fails visibly) when a visit asks for it
            log.exception("screen %s could not be built ahead", name)

    def _print(self) -> None:
        try:
            self.app.runtime.engine.printing.warm_up()
        except Exception:  # the first document is then rendered cold, and fails (visibly) if it must
            log.exception("the printing could not be warmed up ahead")
