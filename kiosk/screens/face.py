"""Face check (人证核验): a live mirror in the oval, spoken guidance, automatic capture, liveness.

The face step (``runtime.face_step()``, :mod:`kiosk.services.face`) grabs and analyses the
camera's frames on its own threads. This screen only polls its newest preview frame on the
Kivy clock, blits it into a texture drawn inside the oval, shows the guidance that came with
it and says it when it changes. When the step ends (captured by itself or after 拍照, or the
liveness check failed) the outcome goes to ``Transaction.face_attempt``; a miss with tries
left starts the next try after a pause, the third failure is the transaction's refusal.
Nothing here writes a frame anywhere: the texture lives in video memory and is dropped when
the screen is left.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty
from kivy.uix.widget import Widget

from kiosk.errors import DeviceOffline, DeviceTimeout, KioskError
from kiosk.screens.base import KioskScreen

RETRY_PAUSE_S = 2.0  # after a miss: the message is read (and said) before the camera starts again
PRESENCE_EVERY_S = 1.0  # a face in front of the camera counts as the resident's presence (idle timer)


class FacePreview(Widget):
    """The oval: the newest mirrored camera frame drawn inside it, and how long the face has been held.

    ``help_private``: a masked screenshot for the duty officer leaves the resident's face out.
    """

    help_private = BooleanProperty(True)
    texture = ObjectProperty(None, allownone=True)  # the part of the frame the oval shows
    hold = NumericProperty(0)  # 0..1 of the hold before the automatic capture
    placed = BooleanProperty(False)  # one face centred and large enough

    _frame_texture: Any = None
    _frame_size = (0, 0)

    def on_size(self, *_args: Any) -> None:
        """The oval's proportions decide which part of the frame it shows."""
        self._crop()

    def show(self, rgb: bytes, width: int, height: int) -> None:
        """Blit one frame (RGB rows top to bottom) into the texture; on the UI thread only."""
        if self._frame_texture is None or self._frame_size != (width, height):
            texture = Texture.create(size=(width, height), colorfmt="rgb")
            texture.flip_vertical()  # the frame's first row is its top; a texture's is its bottom
            self._frame_texture, self._frame_size = texture, (width, height)
            self._crop()
        self._frame_texture.blit_buffer(rgb, colorfmt="rgb", bufferfmt="ubyte")
        self.canvas.ask_update()

    def clear(self) -> None:
        """Drop the picture (the last resident's face goes with the texture)."""
        self._frame_texture = None
        self._frame_size = (0, 0)
        self.texture = None
        self.hold = 0
        self.placed = False

    def _crop(self) -> None:
        texture = self._frame_texture
        if texture is None or self.width <= 0 or self.height <= 0:
            return
        width, height = self._frame_size
        aspect = self.width / self.height
        crop_w, crop_h = min(width, int(height * aspect)), min(height, int(width / aspect))
        self.texture = texture.get_region((width - crop_w) // 2, (height - crop_h) // 2, crop_w, crop_h)


Factory.register("FacePreview", cls=FacePreview)


def guidance_line(update: Any, tr: Any, lang: str) -> str:
    """What the resident is told for one preview frame: where to stand, then the liveness prompt."""
    from kiosk.services.face.guide import GUIDANCE_TEXTS, Guidance, Liveness

    def said(code: str) -> str:
        return tr(GUIDANCE_TEXTS[code])

    if update.liveness is Liveness.FAILED:
        return said("failed")
    if update.guidance is not Guidance.HOLD_STILL:
        return said(update.guidance.value)
    if update.liveness is Liveness.TURN_HEAD:
        return said("turn_head")
    if update.liveness is Liveness.BLINK:
        stop = "。" if lang == "zh_CN" else ". "
        return said("hold_still") + stop + said("blink")
    return said("hold_still")


class FaceScreen(KioskScreen):
    """Runs one face step per try; the resident is guided and captured without a touch (拍照 stays)."""

    spoken_ids = ("guidance", "result")
    alert_ids = ("result",)

    blitted = NumericProperty(0)  # preview frames drawn since the screen appeared (benchmarks, tests)
    _missed: Any = None  # the last attempt that missed, worded again on a language switch
    _missed_on = -1  # the try it missed on
    _step: Any = None
    _try = 0
    _shown_seq = -1
    _tick: Any = None
    _retry: Any = None
    _guidance_said = False
    _present_at = 0.0
    _last_update: Any = None

    def on_kv_post(self, *_args: Any) -> None:
        """Reword the last attempt's message and the guidance on a language switch."""
        self._lock = threading.Lock()
        # One worker does every camera start and stop in order, so the UI thread never waits
        # on the device and a stop can never land after the next try's start.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face-screen")
        self.app.bind(lang=self._relabel)

    def _relabel(self, *_args: Any) -> None:
        if self._missed is not None:
            self._word_miss(self._missed)
        self._show_guidance(self._last_update, speak=False)

    def on_pre_enter(self, *_args: Any) -> None:
        """A new visit to the step: no message, no picture, the first guidance."""
        self._missed = None
        self._last_update = None
        self.ids.result.text = ""
        self.ids.preview.clear()
        self.blitted = 0
        self._show_guidance(None, speak=False)

    def on_enter(self, *_args: Any) -> None:
        """Start the camera and the face step, and draw its preview on every frame."""
        self._tick = Clock.schedule_interval(self._draw, 0)
        self._start_try()

    def on_leave(self, *_args: Any) -> None:
        """Stop the camera and drop the picture."""
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._stop_try()
        self.ids.preview.clear()

    # --- one try ------------------------------------------------------------------------------
    def _start_try(self) -> None:
        self._stop_try()
        with self._lock:
            token = self._try
        self._guidance_said = False
        self._shown_seq = -1
        runtime = self.app.runtime

        def open_step() -> None:
            try:
                step = runtime.face_step()
                step.start(on_result=lambda outcome: Clock.schedule_once(
                    lambda _dt: self._finished(token, outcome)))
            except KioskError as err:
                Clock.schedule_once(lambda _dt, e=err: self._camera_failed(token, e))
                return
            with self._lock:
                if token == self._try:
                    self._step = step
                    return
            step.stop()  # the screen was left while the camera started

        self._worker.submit(open_step)

    def _stop_try(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        with self._lock:
            self._try += 1  # whatever the last try still reports is stale from now on
            step, self._step = self._step, None
        if step is not None:
            self._worker.submit(step.stop)

    def _here(self, token: int) -> bool:
        return token == self._try and self.manager is not None and self.manager.current == self.name

    def _finished(self, token: int, outcome: Any) -> None:
        """The step has its outcome (UI thread): hand it on, unless the screen has moved on."""
        if not self._here(token) or self.app.txn is None:
            outcome.wipe()
            return
        from kiosk.services.face.step import CAMERA_FAILED

        if outcome.status == CAMERA_FAILED:
            error_type = DeviceOffline if outcome.error == DeviceOffline.code else DeviceTimeout
            self._camera_failed(token, error_type("the camera gave no frame during the face check", device="camera"))
            return
        self.app.run_step(self.app.txn.face_attempt, outcome, on_result=self.show_result)

    def _camera_failed(self, token: int, error: KioskError) -> None:
        if self._here(token):
            self.app.show_failure(error)

    def capture(self) -> None:
        """拍照: capture now, or as soon as the liveness check has passed."""
        with self._lock:
            step = self._step
        if step is not None:
            step.capture_now()

    def show_result(self, result: Any) -> None:
        """A miss with tries left: say why, and start the next try (a match moves on by itself)."""
        if result.matched:
            return
        self._missed, self._missed_on = result, self._try
        self._word_miss(result)
        txn = self.app.txn
        if result.tries_left > 0 and txn is not None and txn.outcome is None and self._tick is not None:
            self._retry = Clock.schedule_once(lambda _dt: self._start_try(), RETRY_PAUSE_S)

    def _word_miss(self, result: Any) -> None:
        if result.reason == "liveness_failed":
            text = self.app.tr("The camera could not tell that you are there in person. "
                               "Please blink slowly when asked. Tries left: {n}")
        else:
            text = self.app.tr("Your face was not recognised. Please look straight at the camera. Tries left: {n}")
        self.ids.result.text = text.format(n=result.tries_left)

    # --- the preview --------------------------------------------------------------------------
    def _draw(self, _dt: float) -> None:
        """Every UI frame: blit the step's newest preview frame, if there is a new one."""
        step = self._step
        update = step.latest() if step is not None else None
        if update is None or update.seq == self._shown_seq:
            return
        self._shown_seq = update.seq
        preview = self.ids.preview
        preview.show(update.rgb, update.width, update.height)
        preview.hold = update.hold
        preview.placed = update.guidance.value == "hold_still"
        self.blitted += 1
        self._show_guidance(update, speak=True)
        if self._missed is not None and self._missed_on != self._try and preview.placed:
            self._missed = None  # the next try has the face in place: the last miss's message has done its work
            self.ids.result.text = ""
        now = time.monotonic()
        if update.face is not None and now - self._present_at >= PRESENCE_EVERY_S:
            self._present_at = now
            self.app.touched()  # someone is in front of the camera: no "are you still there?"

    def _show_guidance(self, update: Any, *, speak: bool) -> None:
        """The guidance line for ``update`` (None: nobody yet); said when it changes."""
        from kiosk.services.face.guide import GUIDANCE_TEXTS

        self._last_update = update
        app = self.app
        text = guidance_line(update, app.tr, app.lang) if update is not None else app.tr(GUIDANCE_TEXTS["no_face"])
        label = self.ids.guidance
        if text == label.text:
            return
        label.text = text
        speech = app.speech
        if speak and speech is not None and self.manager is not None and self.manager.current == self.name:
            # The first change of a try waits for what is being said (the screen, a miss); later ones
            # cut in, so the resident always hears where to go now, not where they were.
            stop = "。" if app.lang == "zh_CN" else "."
            speech.say(text + stop, app.lang, interrupt=self._guidance_said)
            self._guidance_said = True


SCREEN = FaceScreen
