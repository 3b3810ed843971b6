"""The help button's side of the UI: calling the duty officer, the reply banner, and the masked screenshots.

:class:`HelpCalls` is mixed into the app (its Kivy properties drive the header's help bar
and the two overlays in common.kv); the calls go to ``runtime.help``
(:class:`kiosk.services.help.HelpDesk`) off the UI thread. :func:`render_screen` draws what
the resident sees into an off-screen buffer with masking on: every text through the log
masker (ID, phone and passport numbers, and the session's name and address), every text
field, the keyboard panel, every texture-fed picture (a camera) and any widget marked
``help_private = True`` (a preview drawn on its own canvas must say so) left out. It is the only picture of the
screen that leaves the kiosk: never a raw frame of a form holding an ID number.

This module imports no Kivy widget at load (the app imports it before the window exists).
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty

from kiosk.errors import KioskError
from kiosk.privacy import MASKING_FILTER

log = logging.getLogger(__name__)

SHOT_DELAY_S = 0.3  # after a screen change: let it draw its texts first
JPEG_QUALITY = 70
NO_HELP_SCREENS = frozenset({"maintenance_pin", "maintenance"})  # the technician's screens


@dataclass(frozen=True)
class ScreenRender:
    """One render of the window's content: RGB pixels (rows top to bottom) and the texts drawn in it."""

    width: int
    height: int
    rgb: bytes
    texts: tuple[str, ...]

    def jpeg(self) -> bytes:
        """The render as a JPEG (Pillow)."""
        from PIL import Image

        out = io.BytesIO()
        Image.frombytes("RGB", (self.width, self.height), self.rgb).save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue()


def _visible(widget: Any, root: Any) -> bool:
    """Whether ``widget`` is drawn: neither it nor a parent up to ``root`` is fully transparent."""
    for _depth in range(64):
        if widget is None or widget.opacity <= 0:
            return widget is None
        if widget is root:
            return True
        widget = widget.parent
    return True


def render_screen(root: Any, width: int, *, masked: bool = True) -> ScreenRender:
    """Draw ``root`` (the window's content) ``width`` pixels wide; with ``masked`` personal data is left out.

    Runs on the UI thread, in one go: the masked texts are put in place, drawn into an
    off-screen buffer and put back before the window draws its next frame, so the resident
    never sees them change.
    """
    from kivy.graphics import ClearBuffers, ClearColor, Fbo, PopMatrix, PushMatrix, Translate
    from kivy.uix.image import Image as KvImage
    from kivy.uix.label import Label
    from kivy.uix.textinput import TextInput

    from kiosk.screens.base import BACKGROUND
    from kiosk.screens.ime import ImePanel

    undo: list[tuple[Any, str, Any]] = []
    if masked:
        for w in list(root.walk(restrict=True)):
            if (isinstance(w, (TextInput, ImePanel)) or (isinstance(w, KvImage) and not w.source)
                    or getattr(w, "help_private", False)):
                undo.append((w, "opacity", w.opacity))
                w.opacity = 0  # a form field, the keyboard's typing, a camera picture: blanked
            elif isinstance(w, Label) and w.text:
                hidden = MASKING_FILTER.mask(w.text)
                if hidden != w.text:
                    undo.append((w, "text", w.text))
                    w.text = hidden
                    w.texture_update()
    try:
        texts = tuple(w.text for w in root.walk(restrict=True)
                      if isinstance(w, (Label, TextInput)) and w.text and _visible(w, root))
        scale = width / float(root.width)
        size = (int(root.width * scale), int(root.height * scale))
        # Drawn at the window's own size and made smaller afterwards: the lists clip with scissor boxes in window
        # pixels (common.kv), which a scaled drawing would not follow.
        full = (int(root.width), int(root.height))
        fbo = Fbo(size=full, with_stencilbuffer=True)
        with fbo:
            ClearColor(*BACKGROUND)  # the window's clear colour: the kiosk's background
            ClearBuffers()
            PushMatrix()
            Translate(-root.x, -root.y, 0)
        parent_canvas = root.parent.canvas if root.parent is not None else None
        index = parent_canvas.indexof(root.canvas) if parent_canvas is not None else -1
        if index > -1:
            parent_canvas.remove(root.canvas)
        try:
            fbo.add(root.canvas)
            with fbo:
                PopMatrix()
            fbo.draw()
            rgba = bytes(fbo.texture.pixels)
            fbo.remove(root.canvas)
        finally:
            if index > -1:
                parent_canvas.insert(index, root.canvas)
    finally:
        for w, attr, value in reversed(undo):
            setattr(w, attr, value)
            if attr == "text":
                w.texture_update()
    from PIL import Image

    # The buffer's rows run bottom to top.
    picture = Image.frombytes("RGBA", full, rgba).transpose(Image.Transpose.FLIP_TOP_BOTTOM).convert("RGB")
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.BOX)  # each pixel the mean of those it covers
    return ScreenRender(size[0], size[1], picture.tobytes(), texts)


class HelpCalls:
    """The app's help button, confirmation, open-request line and reply banner (mixed into KioskApp)."""

    help_status = StringProperty("")  # "", "asking", "calling", "open", "answered", "failed"
    help_ticket = StringProperty("")
    help_reply = StringProperty("")
    help_share_name = StringProperty("")  # the masked name the resident may share ("" = none to share)
    help_share = BooleanProperty(False)  # the resident agreed to share it
    help_problem = StringProperty("")  # why the call did not go through

    runtime: Any
    sm: Any
    root: Any
    kiosk_config: Any
    _help_shot: Any = None
    touched: Any
    background: Any
    idle_limit_s: float
    tr: Any

    # --- the help button (the same place on every screen) -----------------------------------
    def help_pressed(self) -> None:
        """The header's button: call for help, or (while a call waits) take the call back."""
        if self.help_status == "open":
            self.background(self.runtime.help.cancel, on_result=lambda _s: self._help_reset(),
                            on_error=self._help_failed)
            return
        if self.help_status in ("", "failed"):
            self._help_shot = self._render_for_help()  # the screen as it was, before the question covers it
            self.help_share_name = self.runtime.help.masked_identity(getattr(self, "txn", None))
            self.help_share = False
            self.help_problem = ""
            self.help_status = "asking"

    def confirm_help(self) -> None:
        """The resident confirmed: send the request with the screen as it was."""
        from kiosk.services.help import HelpContext, screenshot_body

        txn = getattr(self, "txn", None)
        item = getattr(self, "item", None)
        step = getattr(getattr(txn, "step", None), "value", "") if txn is not None else ""
        screen = self.sm.current if self.sm is not None else "home"
        context = HelpContext(screen, item.id if item is not None else "", step or "")
        shot, self._help_shot = self._help_shot, None
        share = self.help_share_name if self.help_share else ""
        self.help_status = "calling"

        def call() -> Any:
            image = screenshot_body(shot.jpeg()) if shot is not None else None
            return self.runtime.help.open(context, image, share)

        self.background(call, on_result=self._help_opened, on_error=self._help_failed)

    def dismiss_help(self) -> None:
        """The resident does not want to call after all."""
        self._help_shot = None
        self._help_reset()

    def acknowledge_help(self) -> None:
        """The resident read the officer's reply (the banner's button)."""
        self.runtime.help.acknowledge()
        self._help_reset()

    def end_help(self) -> None:
        """The session ends: an open call is closed at the backend (off the UI thread), nothing stays on show."""
        if self.help_status in ("open", "calling", "answered"):
            import threading

            threading.Thread(target=self.runtime.help.end_session, name="kiosk-help-end", daemon=True).start()
        self._help_shot = None
        self._help_reset()

    def announce_help_reply(self, reply: str) -> None:
        """The officer's reply is on show: say it (VoiceGuide.say_officer_reply)."""
        log.info("help reply on show (%d characters)", len(reply))
        self.say_officer_reply(reply)

    def help_idle_timeout(self, idle_timeout_s: float) -> float:
        """The idle timeout now: a resident waiting for the officer's answer has not walked away, so while a
        call waits it is ``[help] wait_idle_s`` (never shorter than the usual one)."""
        if self.help_status in ("calling", "open"):
            return max(idle_timeout_s, float(self.kiosk_config.help.wait_idle_s))
        return idle_timeout_s

    # --- from the worker and the screens ------------------------------------------------------
    def help_from_worker(self, state: Any) -> None:
        """HelpDesk listener (worker thread): show the reply, or the end of the call, on the UI thread."""
        Clock.schedule_once(lambda _dt: self._help_changed(state))

    def help_screen_changed(self, name: str) -> None:
        """A new screen while a call waits: send its masked picture once it has drawn."""
        if self.help_status == "open":
            Clock.schedule_once(lambda _dt: self._send_screen(name), SHOT_DELAY_S)

    def _send_screen(self, name: str) -> None:
        if self.help_status != "open" or self.sm is None or self.sm.current != name:
            return
        from kiosk.services.help import screenshot_body

        shot = self._render_for_help()
        if shot is not None:
            self.background(lambda: self.runtime.help.show_screen(name, screenshot_body(shot.jpeg())))

    def _render_for_help(self) -> ScreenRender | None:
        try:
            return render_screen(self.root, self.kiosk_config.help.screenshot_width, masked=True)
        except Exception:  # a picture that cannot be drawn must not stop the call
            log.exception("masked screenshot failed")
            return None

    def _help_opened(self, state: Any) -> None:
        self.help_ticket = state.ticket
        self.help_status = "open"

    def _help_failed(self, error: BaseException) -> None:
        from kiosk.services.help import HelpBusy

        if isinstance(error, HelpBusy):
            self.help_status = "open"
            return
        code = error.code if isinstance(error, KioskError) else type(error).__name__
        log.warning("help call failed: %s", code)
        self.help_problem = self.tr("The call did not go through. Please use the intercom or go to the counter.")
        self.help_status = "failed"

    def _help_changed(self, state: Any) -> None:
        if state.ticket != self.help_ticket:
            return
        if state.answered:
            self.help_reply = state.reply
            self.help_status = "answered"
            self.touched()  # the resident gets the whole idle time to read the reply
            self.announce_help_reply(state.reply)
            Clock.schedule_once(lambda _dt, t=state.ticket: self._reply_unread(t), self.idle_limit_s)
        elif not state.waiting:
            self._help_reset()

    def _reply_unread(self, ticket: str) -> None:
        # The reply was up for the whole idle time without "I have read it": the resident has gone (on the
        # home screen no session ends by itself), so the next resident does not find it there.
        if self.help_status == "answered" and self.help_ticket == ticket:
            log.info("help reply not acknowledged within the idle time: dismissed")
            self.acknowledge_help()

    def _help_reset(self) -> None:
        self.help_status = ""
        self.help_ticket = ""
        self.help_reply = ""
        self.help_share = False
        self.help_problem = ""
