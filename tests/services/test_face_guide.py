"""The face guide's rules frame by frame, on hand-made analyses (the real detector's runs: test_face_step.py)."""
from __future__ import annotations

import pytest

from kiosk.config import ConfigError, FaceConfig, from_dict
from kiosk.services.face.detector import Analysis, Box
from kiosk.services.face.guide import (GUIDANCE_TEXTS, BlinkTracker, FaceGuide, Guidance, Liveness, TurnTracker,
                                       guidance_text, position)

CFG = FaceConfig()


def _seen(*faces: Box, eyes: int | None = None) -> Analysis:
    return Analysis(640, 480, tuple(faces), eyes)


def _face(width_fraction: float, cx: float = 0.5, cy: float = 0.5) -> Box:
    w = int(640 * width_fraction)
    return Box(int(cx * 640 - w / 2), int(cy * 480 - w / 2), w, w)


@pytest.mark.parametrize("analysis, expected", [
    (_seen(), Guidance.NO_FACE),
    (_seen(_face(0.3), _face(0.25, 0.2)), Guidance.TOO_MANY_FACES),
    (_seen(_face(0.3), _face(0.08, 0.1)), Guidance.HOLD_STILL),  # someone far behind does not count
    (_seen(_face(0.15)), Guidance.MOVE_CLOSER),
    (_seen(_face(0.6)), Guidance.MOVE_BACK),
    (_seen(_face(0.3, cx=0.7)), Guidance.MOVE_TO_CENTRE),
    (_seen(_face(0.3, cy=0.8)), Guidance.MOVE_TO_CENTRE),
    (_seen(_face(0.3, cx=0.58)), Guidance.HOLD_STILL),
])
def test_position(analysis, expected):
    assert position(analysis, CFG) is expected


def test_a_blink_needs_open_then_two_closed_frames_then_open():
    blink = BlinkTracker(0.8)
    assert not blink.observe(0.0, 0)  # closed from the start: nothing seen open yet
    assert not blink.observe(0.1, 2)
    assert not blink.observe(0.15, 0)
    assert not blink.observe(0.2, 2)  # one closed frame is a detector miss, not a blink
    assert not blink.observe(0.25, 0) and not blink.observe(0.3, 0)
    assert blink.observe(0.35, 1)
    assert blink.blinked_at == 0.35


def test_eyes_closed_too_long_is_not_a_blink():
    blink = BlinkTracker(0.8)
    blink.observe(0.0, 2)
    for i in range(1, 20):
        blink.observe(i * 0.1, 0)
    assert not blink.observe(2.0, 2)


def test_a_turn_is_aside_and_back():
    turn = TurnTracker()
    assert not turn.observe(0.0, Box(200, 100, 200, 200))
    assert not turn.observe(0.1, Box(215, 100, 200, 200))  # a sway, not a turn
    assert not turn.observe(0.2, Box(240, 100, 200, 200))  # aside
    assert turn.observe(0.3, Box(205, 100, 200, 200))  # and back


def test_guidance_settles_before_it_changes():
    guide = FaceGuide(FaceConfig(settle_s=0.2))
    guide.observe(0.0, _seen(_face(0.15)))
    assert guide.observe(0.1, _seen(_face(0.15))).guidance is Guidance.NO_FACE
    assert guide.observe(0.25, _seen(_face(0.15))).guidance is Guidance.MOVE_CLOSER


def test_identical_frames_fail_after_the_window_even_when_well_placed():
    guide = FaceGuide(CFG)
    verdicts = [guide.observe(i / 20, _seen(_face(0.3), eyes=2), frame=i) for i in range(0, 200)]
    failed = [v for v in verdicts if v.failed]
    assert len(failed) == 1 and failed[0].capture is None
    assert CFG.liveness_window_s < failed[0].t <= CFG.liveness_window_s + 0.1
    assert any(v.liveness is Liveness.TURN_HEAD for v in verdicts)


def test_capture_waits_for_the_hold_and_takes_a_frame_with_open_eyes():
    guide = FaceGuide(CFG)
    eyes = [2, 2, 0, 0, 2] + [2] * 40  # a blink at once, then holding still
    verdicts = [guide.observe(i / 20, _seen(_face(0.3), eyes=e), frame=i) for i, e in enumerate(eyes)]
    captured = [v for v in verdicts if v.capture is not None]
    assert len(captured) == 1 and captured[0].automatic
    assert captured[0].t >= CFG.hold_s and eyes[captured[0].capture] == 2


def test_every_code_has_a_chinese_and_an_english_text():
    codes = {g.value for g in Guidance} | {l.value for l in Liveness}
    assert codes == set(GUIDANCE_TEXTS)
    for code in codes:
        assert guidance_text(code, "en") == GUIDANCE_TEXTS[code]
        assert guidance_text(code, "zh_CN") != GUIDANCE_TEXTS[code]


def test_face_config_keys_are_checked():
    assert from_dict({"face": {"hold_s": 1.5}}).face.hold_s == 1.5
    with pytest.raises(ConfigError) as err:
        from_dict({"face": {"min_face_width": 0.6, "max_face_width": 0.5}})
    assert "face" in err.value.key
