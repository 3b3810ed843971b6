"""The face step on real frames: the simulator's visits through the camera interface into the Haar detector.

Lockstep runs analyse every frame on the sequence's own clock (a 6-second visit in about
a second); one run streams in real time as the screen will.
"""
from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from kiosk.config import FaceConfig
from kiosk.hardware.simulators.camera import SimCamera
from kiosk.services.face.detector import HaarFaceDetector
from kiosk.services.face.step import CAPTURED, LIVENESS_FAILED, FaceOutcome, FaceStep

DETECTOR = HaarFaceDetector()


def _run(sequence: str, *, manual: bool = False, max_frames: int = 400, cfg: FaceConfig | None = None,
         **options) -> tuple[FaceStep, SimCamera]:
    camera = SimCamera("camera", {"sequence": sequence, "realtime": False, **options})
    step = FaceStep(camera, cfg or FaceConfig(), detector=DETECTOR, lockstep=True)
    if manual:
        step.capture_now()
    step.start()
    deadline = time.monotonic() + 120
    while not step.done and camera.frames_served < max_frames and time.monotonic() < deadline:
        time.sleep(0.01)
    step.stop()
    return step, camera


@functools.lru_cache(maxsize=None)
def _visit(sequence: str) -> tuple[FaceStep, SimCamera]:
    """One run per sequence, shared by the tests that only read it (the detector is the costly part)."""
    return _run(sequence)


def _guidance(step: FaceStep) -> list[str]:
    """The guidance shown, in order, each change once."""
    shown: list[str] = []
    for _t, guidance, _liveness in step.stats.history:
        if not shown or shown[-1] != guidance:
            shown.append(guidance)
    return shown


def _since_start(step: FaceStep, camera: SimCamera, t: float) -> float:
    return t - camera._started_at


def _decoded(outcome: FaceOutcome) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(bytes(outcome.image))).convert("RGB"))


def test_approach_is_guided_closer_then_to_the_centre_and_captured_by_itself_after_a_blink():
    step, camera = _visit("approach")
    outcome = step.result(0)
    assert outcome is not None and outcome.status == CAPTURED and outcome.automatic
    assert outcome.liveness == "blink"
    assert _guidance(step) == ["no_face", "move_closer", "move_to_centre", "hold_still"]
    # the face was placed for at least the hold second before the capture
    assert step.stats.outcome_at - step.stats.first_placed_at >= FaceConfig().hold_s
    picture = _decoded(outcome)
    assert picture.shape == (480, 640, 3)
    found = DETECTOR.analyse(picture)
    assert len(found.faces) == 1 and abs(found.face.cx - 320) < 0.12 * 640 and found.eyes


def test_far_hears_move_closer_for_seconds_before_it_captures():
    step, camera = _visit("far")
    outcome = step.result(0)
    assert outcome is not None and outcome.status == CAPTURED and outcome.automatic
    closer = [t for t, g, _ in step.stats.history if g == "move_closer"]
    placed = [t for t, g, _ in step.stats.history if g == "hold_still"]
    assert closer and placed and closer[0] < placed[0]
    assert placed[0] - closer[0] >= 2.5  # told to come closer all the while they stood far away
    assert "move_back" not in _guidance(step)


def test_near_is_told_to_move_back_then_captured():
    step, _ = _visit("near")
    outcome = step.result(0)
    assert outcome is not None and outcome.status == CAPTURED
    assert _guidance(step)[1:] == ["move_back", "hold_still"]


def test_a_resident_who_never_blinks_is_asked_to_turn_the_head_and_passes_by_turning():
    step, _ = _visit("turn")
    outcome = step.result(0)
    assert outcome is not None and outcome.status == CAPTURED and outcome.liveness == "head_turn"
    assert [l for _, _, l in step.stats.history].index("turn_head") > 0


def test_a_printed_photo_fails_liveness_and_nothing_is_captured():
    step, camera = _visit("photo")
    outcome = step.result(0)
    assert outcome is not None and outcome.status == LIVENESS_FAILED and outcome.image is None
    assert not outcome.captured
    assert _guidance(step) == ["no_face", "hold_still"]  # well placed, yet not alive
    window = FaceConfig().liveness_window_s
    assert window <= step.stats.outcome_at - step.stats.first_placed_at < window + 0.5


def test_the_photo_button_cannot_push_a_photo_through():
    step, _ = _run("photo", manual=True, cfg=FaceConfig(liveness_window_s=2.0))
    assert step.result(0).status == LIVENESS_FAILED
    assert step.stats.outcome_at - step.stats.history[0][0] < 2.5  # the button started the liveness clock


def test_the_photo_button_captures_a_live_resident_once_they_blinked():
    step, camera = _run("approach", manual=True)
    outcome = step.result(0)
    assert outcome.status == CAPTURED and not outcome.automatic and outcome.liveness == "blink"
    assert len(DETECTOR.analyse(_decoded(outcome)).faces) == 1


def test_nobody_there_gets_no_face_and_no_outcome():
    step, camera = _run("empty", max_frames=150)
    assert camera.frames_served >= 150
    assert step.result(0) is None
    assert _guidance(step) == ["no_face"]


def test_live_stream_previews_mirrored_frames_with_guidance_and_captures():
    camera = SimCamera("camera", {"sequence": "approach", "fps": 20.0})
    updates = []
    results = []
    done = threading.Event()
    # a long liveness window: on a busy machine the analysis may miss a blink and wait for the next
    step = FaceStep(camera, FaceConfig(liveness_window_s=15.0), detector=DETECTOR)
    step.start(on_update=updates.append, on_result=lambda o: (results.append(o), done.set()))
    try:
        assert done.wait(60)
        latest = step.latest()
    finally:
        step.stop()
    assert results[0].status == CAPTURED and results[0].automatic
    assert not camera.streaming
    assert len(updates) >= 20 and latest is not None
    assert {u.guidance.value for u in updates} >= {"no_face", "move_closer", "hold_still"}
    assert all(len(u.rgb) == u.width * u.height * 3 for u in updates[:5])
    # mirrored: the resident walks in from the camera's right, which is the preview's left
    entering = next(u for u in updates if u.face is not None)
    assert entering.face.cx < entering.width / 2
    assert step.stats.preview_frames >= step.stats.analysed_frames - 1


def test_preview_frame_is_the_camera_frame_mirrored():
    camera = SimCamera("camera", {"sequence": "photo", "realtime": False, "width": 320, "height": 240})
    truth = camera.read_frame().pixels
    step = FaceStep(camera, FaceConfig(), detector=DETECTOR, lockstep=True)
    step.start()
    while step.latest() is None:
        time.sleep(0.01)
    update = step.latest()
    step.stop()
    shown = np.frombuffer(update.rgb, np.uint8).reshape(update.height, update.width, 3)
    assert np.array_equal(shown, truth[:, ::-1])
    assert step.latest() is None  # stop drops the preview


# Runs in a child process whose /tmp is its own (a private mount namespace, as root here and in CI: an
# overlay on the shared /tmp), so anything written there during the preview, by Python or by OpenCV's
# native code, is seen in the overlay's upper layer and nothing other programs write to /tmp confuses it.
_PREVIEW_CHILD = r"""
import json, os, sys, threading, time
writes = []
def audit(event, args):
    if event == "open":
        path, mode, flags = args
        if (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writes.append(str(path))
    elif event in ("os.rename", "os.replace", "os.mkdir", "os.symlink", "shutil.copyfile"):
        writes.append(f"{event} {args[0]}")
from kiosk.config import FaceConfig
from kiosk.hardware.simulators.camera import SimCamera
from kiosk.services.face.detector import HaarFaceDetector
from kiosk.services.face.step import FaceStep
detector = HaarFaceDetector()
sys.addaudithook(audit)
step = FaceStep(SimCamera("camera", {"sequence": "approach", "realtime": False}), detector=detector, lockstep=True)
step.start()
outcome = step.result(120)
step.stop()
live = FaceStep(SimCamera("camera", {"sequence": "photo", "fps": 20.0}), detector=detector)
live.start()
time.sleep(1.5)
live.stop()
found = [os.path.join(r, f) for r, _d, fs in os.walk("/mnt/upper") for f in fs]
print(json.dumps({"status": outcome.status, "preview": live.stats.preview_frames + step.stats.preview_frames,
                  "writes": writes, "tmp": found}))
"""


def test_no_preview_frame_touches_the_disk():
    # /tmp gets an overlay whose upper layer is a fresh tmpfs: whatever the child writes there lands in
    # /mnt/upper, and a checkout or virtual environment under /tmp stays visible (a tmpfs over /tmp hid them)
    script = ('mount -t tmpfs tmpfs /mnt && mkdir /mnt/upper /mnt/lower-work '
              '&& mount -t overlay overlay -o lowerdir=/tmp,upperdir=/mnt/upper,workdir=/mnt/lower-work /tmp '
              '&& mkdir /tmp/work && cd /tmp/work && exec "$@"')
    env = {**os.environ, "TMPDIR": "/tmp/work", "HOME": "/tmp/work"}
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                           sys.executable, "-c", _PREVIEW_CHILD], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == CAPTURED and report["preview"] > 100  # the preview really ran
    assert report["writes"] == []  # no file opened for writing by Python code
    assert report["tmp"] == []  # and nothing at all appeared in /tmp or the working folder


def test_stop_wipes_the_frames_kept_for_capture():
    camera = SimCamera("camera", {"sequence": "approach", "realtime": False})
    step = FaceStep(camera, FaceConfig(hold_s=9.0), detector=DETECTOR, lockstep=True)
    step.start()
    while camera.frames_served < 90:  # centred and held, not yet captured
        time.sleep(0.01)
    camera.inject("offline")  # no more frames: what the guide keeps now is what stop() must wipe
    time.sleep(0.3)
    kept = step.guide._best[1]
    assert kept.pixels.any()
    writeable = kept.pixels.flags.writeable
    step.stop()
    assert step.guide._best is None and step.guide._last_face is None
    assert writeable and not kept.pixels.any()


def test_outcome_wipe_zeroes_the_image_and_repr_hides_it():
    captured = _visit("approach")[0].result(0)
    outcome = FaceOutcome(CAPTURED, bytearray(captured.image), True, "blink")
    assert "bytes" in repr(outcome) and "\\x" not in repr(outcome)
    outcome.wipe()
    assert not any(outcome.image)


def test_a_second_start_is_refused():
    camera = SimCamera("camera", {"sequence": "empty", "realtime": False})
    step = FaceStep(camera, FaceConfig(), detector=DETECTOR, lockstep=True)
    step.start()
    try:
        with pytest.raises(RuntimeError):
            step.start()
    finally:
        step.stop()


def test_a_camera_that_stops_giving_frames_ends_the_step_camera_failed(monkeypatch):
    import kiosk.services.face.step as step_module

    monkeypatch.setattr(step_module, "CAMERA_GRACE_S", 0.5)
    camera = SimCamera("camera", {"sequence": "empty", "realtime": False}, {"offline": True})
    step = FaceStep(camera, FaceConfig(), detector=DETECTOR, lockstep=True)
    step.start()
    outcome = step.result(10)
    step.stop()
    assert outcome is not None and outcome.status == step_module.CAMERA_FAILED
    assert outcome.error == "device_offline" and outcome.image is None


def test_the_runtime_builds_face_steps_on_its_camera_with_its_config(tmp_path):
    from kiosk.config import from_dict
    from kiosk.services.runtime import Runtime

    cfg = from_dict({"paths": {"state_dir": str(tmp_path / "state")}, "face": {"hold_s": 0.5},
                     "devices": {"camera": {"options": {"sequence": "photo", "realtime": False}}}})
    runtime = Runtime.from_config(cfg)
    try:
        first, second = runtime.face_step(), runtime.face_step()
        assert first is not second and first.camera is runtime.devices.camera
        assert first.cfg.hold_s == 0.5 and first.detector is second.detector
    finally:
        runtime.stop()
