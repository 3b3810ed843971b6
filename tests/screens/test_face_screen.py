"""The face screen through the real UI: a live mirror in the oval, spoken guidance, automatic capture, liveness.

The shared offscreen app runs on the simulators; the camera simulator plays a scripted visit
in real time (``SimCamera.play``) and the real Haar detector analyses it, so each test lasts
as long as the visit does.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.i18n import translate
from kiosk.services.face.guide import GUIDANCE_TEXTS
from tests.screens.test_steps_and_time import start

pytestmark = [pytest.mark.ui, pytest.mark.timeout(300)]

WANG = DEMO_CARDS[0]
VISIT_S = 90.0  # a visit plays in real time; on a loaded machine a missed blink costs a try (several seconds)
PHOTO_S = 150.0  # three tries of a five-second liveness window, with their pauses


def said(code: str) -> str:
    return translate(GUIDANCE_TEXTS[code], "zh_CN")


@pytest.fixture
def camera(ui: Any) -> Iterator[Any]:
    """The simulated camera, back on its default visit after the test."""
    cam = ui.app.runtime.devices.get("camera")
    yield cam
    cam.play("approach")


def to_face(ui: Any, item_id: str = "S01") -> Any:
    """Home → the item's guide → start → card on the reader → the face screen, by touch; the screen."""
    app = ui.app
    start(ui, item_id)
    app.runtime.devices.get("id_card").place(WANG.id_number)
    ui.wait_screen("face")
    return app.sm.get_screen("face")


def oval_pixels(ui: Any, screen: Any) -> np.ndarray:
    """The oval's box as the window shows it now (RGB)."""
    preview = screen.ids.preview
    image = np.asarray(ui.grab())
    x, y = (int(v) for v in preview.to_window(*preview.pos))
    w, h = int(preview.width), int(preview.height)
    top = image.shape[0] - (y + h)
    return image[top:top + h, x:x + w]


def heard(ui: Any) -> list[str]:
    """What the kiosk has said (or is about to say) in this session, in order."""
    return [entry.text for entry in ui.app.runtime.speech.spoken()]


def test_the_guidance_line_says_where_to_go_then_what_liveness_asks(kiosk_ui: Any) -> None:
    # kiosk_ui: the app's window is configured before anything imports Kivy's graphics.
    from types import SimpleNamespace

    from kiosk.screens.face import guidance_line
    from kiosk.services.face.guide import Guidance, Liveness

    def line(guidance: Guidance, liveness: Liveness, lang: str = "zh_CN") -> str:
        return guidance_line(SimpleNamespace(guidance=guidance, liveness=liveness),
                             lambda msgid: translate(msgid, lang), lang)

    assert line(Guidance.MOVE_CLOSER, Liveness.BLINK) == said("move_closer")  # placed first, then alive
    assert line(Guidance.HOLD_STILL, Liveness.BLINK) == said("hold_still") + "。" + said("blink")
    assert line(Guidance.HOLD_STILL, Liveness.BLINK, "en") == "Hold still. Please blink slowly"
    assert line(Guidance.HOLD_STILL, Liveness.TURN_HEAD) == said("turn_head")
    assert line(Guidance.HOLD_STILL, Liveness.PASSED) == said("hold_still")
    assert line(Guidance.NO_FACE, Liveness.FAILED) == said("failed")


def test_s01_captures_by_itself_with_a_live_mirror_in_the_oval(ui: Any, camera: Any) -> None:
    app = ui.app
    screen = to_face(ui)
    txn = app.txn
    touches = ui.touches
    ui.wait_until(lambda: screen.blitted >= 3, "the first preview frames")
    first = oval_pixels(ui, screen)
    ui.wait_seconds(1.0)  # the resident walks in
    second = oval_pixels(ui, screen)
    # The picture in the oval is the camera's, and it moves from frame to frame.
    assert first.std() > 10 and second.std() > 10
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 2
    ui.wait_screen("form", timeout=VISIT_S)
    assert ui.touches == touches  # nothing touched on the face screen
    # Captured (on a loaded machine a blink can be missed and the liveness check tried again: still no touch).
    assert txn.face_tries >= 1 and txn.session.face_image is not None
    assert screen.blitted >= 5 and screen.ids.preview.texture is None  # drawn while shown, dropped on leaving
    said_now = heard(ui)
    # Guided in as the resident walked in, asked to blink, and every line said once as it changed.
    for code in ("move_closer", "blink"):
        assert any(said(code) in text for text in said_now), (code, said_now)
    guidance = [t for t in said_now if any(said(c) in t for c in GUIDANCE_TEXTS)]
    assert all(a != b for a, b in zip(guidance, guidance[1:])), guidance
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
    assert txn.session.face_image is None  # the captured image went with the session


def test_a_printed_photo_is_refused_liveness_failed_after_three_tries(ui: Any, camera: Any) -> None:
    camera.play("photo")
    app = ui.app
    screen = to_face(ui)
    txn = app.txn
    touches = ui.touches
    ui.wait_until(lambda: "2" in screen.ids.result.text, "the first liveness failure", PHOTO_S / 2)
    assert translate("The camera could not tell that you are there in person. "
                     "Please blink slowly when asked. Tries left: {n}", "zh_CN").format(n=2) == screen.ids.result.text
    ui.wait_screen("error", timeout=PHOTO_S)
    assert ui.touches == touches
    assert txn.outcome.value == "refused" and txn.reason == "liveness_failed" and txn.face_tries == 3
    assert txn.session.face_image is None  # a photo that fails liveness is never sent anywhere
    ui.tap_id("home_button")
    ui.wait_screen("home")


def test_a_far_resident_is_told_to_come_closer_before_the_capture(ui: Any, camera: Any) -> None:
    camera.play("far")
    app = ui.app
    shown: list[str] = []
    guidance = app.screen("face").ids.guidance

    def note(_label: Any, text: str) -> None:
        shown.append(text)

    guidance.fbind("text", note)  # before the screen shows: its first guidance comes within a fraction of a second
    try:
        to_face(ui)
        touches = ui.touches
        ui.wait_screen("form", timeout=VISIT_S)
    finally:
        guidance.funbind("text", note)
    assert ui.touches == touches
    assert said("move_closer") in shown and shown.index(said("move_closer")) < len(shown) - 1
    said_now = heard(ui)
    # Told to come closer while still on the face screen, before the form's first words.
    closer = [n for n, text in enumerate(said_now) if said("move_closer") in text]
    form = [n for n, text in enumerate(said_now) if text.startswith(translate("Fill in", "zh_CN"))]
    assert closer and form and closer[0] < form[0], said_now
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_the_photo_button_still_captures(ui: Any, camera: Any) -> None:
    camera.play("turn")  # never blinks: turns the head aside and back after 3.5 s
    app = ui.app
    screen = to_face(ui)
    txn = app.txn
    ui.wait_until(lambda: screen.blitted >= 3, "the first preview frames")
    ui.tap_id("capture_button")
    ui.wait_screen("form", timeout=VISIT_S)
    assert txn.session.face_image is not None
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


# Every file opened for writing (or renamed, made, copied) by this process while a face screen runs.
_WRITES: list[str] = []
_WATCHING = [False]


def _audit(event: str, args: tuple) -> None:
    if not _WATCHING[0]:
        return
    if event == "open":
        path, mode, flags = args
        if (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            _WRITES.append(str(path))
    elif event in ("os.rename", "os.replace", "os.mkdir", "os.symlink", "shutil.copyfile"):
        _WRITES.append(f"{event} {args[0]}")


sys.addaudithook(_audit)


def test_no_preview_frame_is_written_while_the_screen_runs(ui: Any, camera: Any, tmp_path: Path) -> None:
    app = ui.app
    speaker_dir = Path(app.runtime.devices.get("speaker").output_dir).resolve()
    watched = [Path(app.runtime.config.paths.state_dir), Path(os.environ["KIVY_HOME"]), Path.cwd()]
    before = {p for d in watched for p in d.rglob("*") if p.is_file()}
    _WRITES.clear()
    screen = app.screen("face")

    def watch(*_args: Any) -> None:
        _WATCHING[0] = True  # from the moment the face screen appears

    screen.fbind("on_pre_enter", watch)
    try:
        to_face(ui)
        ui.wait_screen("form", timeout=VISIT_S)
    finally:
        _WATCHING[0] = False
        screen.funbind("on_pre_enter", watch)
    assert screen.blitted >= 5  # the preview really ran
    # The only files written meanwhile are the speaker simulator's utterances (WAV, the voice's own).
    written = [w for w in _WRITES if not Path(w.split(" ")[-1]).resolve().is_relative_to(speaker_dir)]
    assert written == []
    new = {p for d in watched for p in d.rglob("*") if p.is_file()} - before
    pictures = [p for p in new if p.suffix.lower() not in (".wav",) and p.read_bytes()[:4] in
                (b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"\x89PNG")]
    assert pictures == []
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
