"""From what each frame shows to what the resident is told, whether they are alive, and when to capture.

Pure logic over time-stamped analyses (no threads, no camera), so it is tested frame by
frame. Times are the frames' own timestamps, never the wall clock: a test replays a
10-second visit in a fraction of a second and gets the same verdicts.

Liveness: a blink is eyes seen open, then closed in at least two frames for no longer
than ``blink_max_closed_s``, then open again. When no blink came ``turn_after_s`` after the
face was first placed, the resident is asked to turn the head slightly; the face's centre
moving aside by a sixth of its width and back counts too. Nothing by
``liveness_window_s`` after the face was first placed (or the photo button was touched)
fails with ``liveness_failed``: a printed photo or a phone held up gives identical frames,
which can do neither.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kiosk.config import FaceConfig
from kiosk.services.face.detector import Analysis, Box

TURN_SHIFT = 1 / 6  # of the face's width: a slight turn of the head
FACE_DROPOUT_S = 0.3  # the detector misses a frame now and then: a placed face stays placed this long


class Guidance(str, enum.Enum):
    """Where the resident should go; the stable codes the screen shows and speaks."""

    NO_FACE = "no_face"
    TOO_MANY_FACES = "too_many_faces"
    MOVE_CLOSER = "move_closer"
    MOVE_BACK = "move_back"
    MOVE_TO_CENTRE = "move_to_centre"
    HOLD_STILL = "hold_still"


class Liveness(str, enum.Enum):
    """What the liveness check asks for, or how it ended."""

    BLINK = "blink"
    TURN_HEAD = "turn_head"
    PASSED = "passed"
    FAILED = "failed"


# English msgids (Chinese in locale/zh_CN/LC_MESSAGES/face.po), by code.
GUIDANCE_TEXTS: dict[str, str] = {
    "no_face": "Please stand in front of the camera",
    "too_many_faces": "Only one person in front of the camera, please",
    "move_closer": "Please come a little closer",
    "move_back": "Please step back a little",
    "move_to_centre": "Please face the camera, with your face inside the oval",
    "hold_still": "Hold still",
    "blink": "Please blink slowly",
    "turn_head": "Please turn your head slightly to one side and back",
    "passed": "Liveness check passed",
    "failed": "The camera could not tell that you are there in person",
}


def guidance_text(code: str, lang: str = "zh_CN") -> str:
    """The resident's sentence for a guidance or liveness code, in ``lang``."""
    from kiosk.i18n import translate

    return translate(GUIDANCE_TEXTS[code], lang)


def position(analysis: Analysis, cfg: FaceConfig) -> Guidance:
    """Where the largest face stands against the config's size and centre limits."""
    face = analysis.face
    if face is None:
        return Guidance.NO_FACE
    if sum(1 for f in analysis.faces if f.w >= 0.6 * face.w) > 1:
        return Guidance.TOO_MANY_FACES
    size = face.w / analysis.width
    if size < cfg.min_face_width:
        return Guidance.MOVE_CLOSER
    if size > cfg.max_face_width:
        return Guidance.MOVE_BACK
    off_x = abs(face.cx / analysis.width - 0.5)
    off_y = abs(face.cy / analysis.height - 0.5)
    if off_x > cfg.centre_tolerance or off_y > cfg.centre_tolerance * 1.5:
        return Guidance.MOVE_TO_CENTRE
    return Guidance.HOLD_STILL


class BlinkTracker:
    """Eyes open, then closed for a moment (two frames or more), then open again."""

    def __init__(self, max_closed_s: float) -> None:
        self.max_closed_s = max_closed_s
        self.seen_open = False
        self.closed_since: float | None = None
        self.closed_frames = 0
        self.blinked_at: float | None = None

    def observe(self, t: float, eyes: int) -> bool:
        """Feed one frame's count of open eyes; True once a blink has been seen."""
        if self.blinked_at is not None:
            return True
        if eyes > 0:
            if (self.closed_since is not None and self.closed_frames >= 2
                    and t - self.closed_since <= self.max_closed_s):
                self.blinked_at = t
                return True
            self.seen_open = True
            self.closed_since, self.closed_frames = None, 0
        elif self.seen_open:
            if self.closed_since is None:
                self.closed_since = t
            self.closed_frames += 1
        return False


class TurnTracker:
    """The face's centre moves aside by TURN_SHIFT of its width, then comes back."""

    def __init__(self) -> None:
        self.reference: float | None = None
        self.went_aside = False
        self.turned_at: float | None = None

    def observe(self, t: float, face: Box) -> bool:
        """Feed the face of one frame; True once it has turned aside and back."""
        if self.turned_at is not None:
            return True
        if self.reference is None:
            self.reference = face.cx
            return False
        shift = abs(face.cx - self.reference) / face.w
        if shift >= TURN_SHIFT:
            self.went_aside = True
        elif self.went_aside and shift <= TURN_SHIFT / 3:
            self.turned_at = t
            return True
        return False


@dataclass(frozen=True)
class Verdict:
    """What one frame changed: the guidance to show, the liveness state, hold progress, and what to do."""

    t: float
    guidance: Guidance
    liveness: Liveness
    hold: float  # 0..1 of the hold before an automatic capture
    face: Box | None
    capture: Any = None  # the frame to capture now (whatever the caller passed as ``frame``)
    automatic: bool = False  # the capture came by itself, not from the photo button
    failed: bool = False  # liveness failed: the step ends with liveness_failed


class FaceGuide:
    """Feeds on one analysis per frame and decides guidance, liveness and the moment of capture."""

    def __init__(self, cfg: FaceConfig) -> None:
        self.cfg = cfg
        self.guidance = Guidance.NO_FACE
        self._candidate = Guidance.NO_FACE
        self._candidate_since = 0.0
        self.placed_since: float | None = None
        self._last_placed = float("-inf")
        self.window_from: float | None = None  # the liveness clock starts at the first placement
        self.blink = BlinkTracker(cfg.blink_max_closed_s)
        self.turn = TurnTracker()
        self.liveness = Liveness.BLINK
        self.method = ""  # "blink" or "head_turn" once passed
        self._manual_at: float | None = None
        self._best: tuple[float, Any] | None = None  # latest frame with one placed face and open eyes
        self._last_face: tuple[float, Any] | None = None
        self.done = False

    def forget(self) -> list[Any]:
        """Drop the frames kept as capture candidates and return them (for the caller to wipe)."""
        kept = [c[1] for c in (self._best, self._last_face) if c is not None]
        self._best = self._last_face = None
        return kept

    def request_capture(self, t: float) -> None:
        """The photo button: capture as soon as liveness allows (the liveness clock starts now if not yet)."""
        if self._manual_at is None:
            self._manual_at = t
        if self.window_from is None:
            self.window_from = t

    def observe(self, t: float, analysis: Analysis, frame: Any = None) -> Verdict:
        """One analysed frame taken at ``t``; ``frame`` is what a capture verdict hands back."""
        raw = position(analysis, self.cfg)
        self._settle(t, raw)
        single = analysis.face if len(analysis.faces) == 1 else None
        if raw is Guidance.HOLD_STILL:
            if self.placed_since is None:
                self.placed_since = t
            self._last_placed = t
            if self.window_from is None:
                self.window_from = t
        elif t - self._last_placed > FACE_DROPOUT_S:
            self.placed_since = None
        if single is not None:
            self._last_face = (t, frame)
            if raw is Guidance.HOLD_STILL and analysis.eyes != 0:
                self._best = (t, frame)
        self._update_liveness(t, analysis, single)
        return self._decide(t, analysis)

    def _settle(self, t: float, raw: Guidance) -> None:
        if raw is not self._candidate:
            self._candidate, self._candidate_since = raw, t
        if raw is not self.guidance and t - self._candidate_since >= self.cfg.settle_s:
            self.guidance = raw

    def _update_liveness(self, t: float, analysis: Analysis, single: Box | None) -> None:
        if self.liveness in (Liveness.PASSED, Liveness.FAILED):
            return
        if single is not None and analysis.eyes is not None and self.blink.observe(t, analysis.eyes):
            self.liveness, self.method = Liveness.PASSED, "blink"
            return
        if self.window_from is None:
            return
        if t - self.window_from >= self.cfg.turn_after_s:
            self.liveness = Liveness.TURN_HEAD
            if single is not None and self.turn.observe(t, single):
                self.liveness, self.method = Liveness.PASSED, "head_turn"
                return
        if t - self.window_from > self.cfg.liveness_window_s:
            self.liveness = Liveness.FAILED

    def _decide(self, t: float, analysis: Analysis) -> Verdict:
        held = t - self.placed_since if self.placed_since is not None else 0.0
        hold = min(1.0, held / self.cfg.hold_s) if self.cfg.hold_s > 0 else float(self.placed_since is not None)
        base = dict(t=t, guidance=self.guidance, liveness=self.liveness, hold=hold, face=analysis.face)
        if self.done:
            return Verdict(**base)
        if self.liveness is Liveness.FAILED:
            self.done = True
            return Verdict(**base, failed=True)
        if self.liveness is not Liveness.PASSED:
            return Verdict(**base)
        if self._manual_at is not None:
            recent = [c for c in (self._best, self._last_face) if c is not None and t - c[0] <= 0.5]
            self.done = True
            return Verdict(**base, capture=recent[0][1] if recent else None, automatic=False)
        if self.placed_since is not None and held >= self.cfg.hold_s and self._best is not None:
            self.done = True
            return Verdict(**base, capture=self._best[1], automatic=True)
        return Verdict(**base)
