"""Widgets shared by every screen: the root with its overlays, the step indicator and the base screen.

The overlays (busy, idle warning) sit above the screen manager and swallow every touch
while shown, so a button they cover cannot be pressed.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from kivy.app import App
from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.textinput import TextInput
from kivy.uix.togglebutton import ToggleButton

# The indicator's name of each workflow step (msgids; see step_name for the two that vary).
STEP_NAMES = {"identify": "Read ID card", "face": "Face check", "form": "Fill in", "confirm": "Confirm",
              "pay": "Pay", "produce": "Print"}
CURRENT_STEP_COLOUR = "ffd54f"


# The kiosk's background behind every screen: the window's clear colour, not a full-window quad (a software
# renderer fills every quad's pixels; clearing is nearly free).
BACKGROUND = (0.05, 0.13, 0.27, 1)


class KioskRoot(FloatLayout):
    """The window's one child: screen manager plus overlays; any touch resets the idle timer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from kivy.core.window import Window

        Window.clearcolor = BACKGROUND

    def on_touch_down(self, touch: Any) -> bool:
        """Dispatch as usual and note the resident's presence.

        While the idle warning is up only its "Continue" button counts: a stray touch
        on the dimmed screen is swallowed and does not keep a forgotten session alive.
        """
        app = App.get_running_app()
        app.voice_interrupt()  # any touch stops speech at once
        warned = app.idle_warning
        # The hidden maintenance gesture sees every touch-down first; the touch still goes on.
        app.corner_touch(touch.x, touch.y, self.width, self.height)
        if app.busy and not warned and self._help_button_takes(touch, app):
            app.touched()
            return True
        taken = super().on_touch_down(touch)
        if not warned:
            app.touched()
        return taken


    @staticmethod
    def _help_button_takes(touch: Any, app: Any) -> bool:
        """While the screen is busy (printing, a slow backend) the help button still takes its touch."""
        screen = app.sm.current_screen if app.sm is not None else None
        button = next((w.ids["help_button"] for w in (screen.walk() if screen is not None else ())
                       if "help_button" in getattr(w, "ids", {})), None)
        if button is None or button.disabled or not button.collide_point(*button.to_widget(*touch.pos)):
            return False
        touch.push()
        touch.apply_transform_2d(button.to_widget)
        try:
            return bool(button.dispatch("on_touch_down", touch))
        finally:
            touch.pop()


class DrawnOnlyWhenSeen:
    """Mixed into a full-window layer that hides at opacity 0: while hidden its canvas is out of its parent's.

    Kivy draws an opacity-0 canvas in full, and a software renderer fills every pixel of it all the same: the
    hidden overlays' panels, labels and buttons cost about 5 ms of every frame at 1080x1920 on llvmpipe.
    """

    def on_opacity(self, widget: Any, opacity: float) -> None:
        """Kivy's own (the canvas's opacity), then in or out of the parent's canvas."""
        super().on_opacity(widget, opacity)  # type: ignore[misc]
        self._place_canvas()

    def on_parent(self, _widget: Any, parent: Any) -> None:
        """Added to a parent: placed once the parent has drawn it in (add_widget sets the parent first)."""
        if parent is not None:
            Clock.schedule_once(lambda _dt: self._place_canvas(), 0)

    def _place_canvas(self) -> None:
        parent = self.parent
        if parent is None:
            return
        host = parent.canvas
        drawn = host.indexof(self.canvas) != -1
        if self.opacity == 0 and drawn:
            host.remove(self.canvas)
        elif self.opacity > 0 and not drawn:
            # Back in its place: before the siblings drawn after it (children[0] is drawn last).
            later = [host.indexof(s.canvas) for s in parent.children[:parent.children.index(self)]]
            later = [i for i in later if i != -1]
            if later:
                host.insert(min(later), self.canvas)
            else:
                host.add(self.canvas)


class Overlay(DrawnOnlyWhenSeen, FloatLayout):
    """A full-screen layer that, while ``shown``, takes every touch from what lies beneath."""

    shown = BooleanProperty(False)

    def on_touch_down(self, touch: Any) -> bool:
        """Swallow the touch when shown (children such as 'Continue' still get it)."""
        if not self.shown:
            return False
        super().on_touch_down(touch)
        return True

    def on_touch_move(self, touch: Any) -> bool:
        """Swallow moves while shown."""
        return self.shown and (super().on_touch_move(touch) or True)

    def on_touch_up(self, touch: Any) -> bool:
        """Swallow releases while shown."""
        return self.shown and (super().on_touch_up(touch) or True)


class FieldInput(TextInput):
    """A text field: what the resident types is data, shown as typed in either language."""

    lang_exempt = BooleanProperty(True)
    # Digits only (phone, ID number, a plate's digits): the tactile keypad's digit keys type into it.
    digits_only = BooleanProperty(False)
    # How the keypad's digits are laid out ("####-##-##" for a date: the dashes come by themselves); "": as typed.
    digits_pattern = StringProperty("")


class OptionButton(ToggleButton):
    """One option of a choice or lookup field; a lookup's options are the resident's records (data)."""

    lang_exempt = BooleanProperty(False)

    def _release_group(self, current: Any) -> None:
        """Every other live button of the group back to normal.

        Kivy 2.3's own version drops a dead weak reference from the group and then sets ``state`` on it
        anyway (AttributeError on None). A reference is dead before its callback takes it out of the group
        when the last resident's options are freed while another thread runs (a soak session crashed on it,
        pressing an option of a form whose earlier options had just gone): only live ones are touched here.
        """
        if self.group is None:
            return
        for widget in self.get_widgets(self.group):
            if widget is not current:
                widget.state = "normal"


# The kv rules (common.kv) style both and use them by name.
Factory.register("FieldInput", cls=FieldInput)
Factory.register("OptionButton", cls=OptionButton)


class KioskScreen(Screen):
    """Base of every screen: gives the .kv rules ``root.app``."""

    @property
    def app(self) -> Any:
        """The running KioskApp."""
        return App.get_running_app()

    def forget(self) -> None:
        """Drop what the last resident left on this screen (their values, records, results): called for every
        screen but home's when the kiosk goes home. Nothing here by default; the screens that show a resident's
        data say what goes."""

    def show_worded(self, label: Any, source: Any) -> None:
        """Show ``source`` in ``label`` in the current language, and again in the new one when the resident
        switches: a KioskError (its message), an English msgid (translated), or None (nothing)."""
        app = self.app
        if getattr(label, "worded_source", "unset") == "unset":
            app.bind(lang=lambda *_a: setattr(label, "text", _worded(app, label.worded_source)))
        label.worded_source = source
        label.text = _worded(app, source)


def _worded(app: Any, source: Any) -> str:
    if source is None:
        return ""
    if isinstance(source, str):
        return app.tr(source)
    return source.message(app.lang)


def unavailable_line(app: Any) -> str:
    """The second line of a tile or list entry whose item cannot run now (markup), in the current language, at the
    body's type size: 40 px, 60 in care mode (a fixed 40 stayed small beside care mode's larger names)."""
    return f"\n[size={round(40 * app.ts)}]" + app.tr("(unavailable right now)") + "[/size]"


def release_graphics() -> bool:
    """Delete now the GL objects of the graphics Python has freed (label textures above all); False without a window,
    or when called off the thread that draws (the main thread).

    Kivy deletes a freed texture's GL texture at its next frame (``Context.gl_dealloc``, on a clock trigger), not when
    the texture goes. With a software renderer (llvmpipe) its pixels are in the C heap: a trim right after a garbage
    collection found them still allocated. Measured after a resident's visit (H01, T02, S01, H05 in the kiosk):
    3.4 to 9.2 MiB of the C heap was such pixels, handed back only at the next frame, after the trim."""
    from kivy.base import EventLoop
    from kivy.graphics.context import get_context

    if threading.current_thread() is not threading.main_thread() or EventLoop.window is None:
        return False
    get_context().gl_dealloc()
    return True


def renew_label_textures(roots: Iterable[Any]) -> int:
    """Give every label under ``roots`` a new texture of its text, the old one freed; how many were renewed.

    For the tidy at rest (home, no resident): with a software renderer (llvmpipe) the C heap a label's texture
    holds grows with what the visits drew, and only a new texture gives it back. Measured in the UI soak, renewing
    the labels after each session handed back 6 to 14 MiB of the C heap (235 to 255 labels, 25 to 220 ms); renewed
    before each reading of a 1,000-session soak, the resident set stood about 19 MiB lower throughout. The renderer
    takes a new texture's pixels at its first frame."""
    seen: set[int] = set()
    renewed = 0
    for root in roots:
        for widget in root.walk(restrict=True):
            if not isinstance(widget, Label) or id(widget) in seen:
                continue
            seen.add(id(widget))
            core = widget._label
            if core is None or core.texture is None or core.texture is core.texture_1px:
                continue
            core.texture = None  # so that the refresh makes a new texture rather than drawing into this one
            widget.texture_update()
            renewed += 1
    return renewed


def gl_finish_without_gil() -> Callable[[], Any]:
    """``glFinish`` called through ctypes, which lets go of the GIL while it waits (Kivy's own without libGL).

    Kivy's own binding holds the GIL: with a software renderer a frame takes tens of
    milliseconds to finish, and meanwhile no other Python thread runs (measured: a busy
    thread kept 4% of its pace). The face step's camera and detector threads must go on
    while the UI thread waits for its frame.
    """
    import ctypes

    try:
        return ctypes.CDLL("libGL.so.1").glFinish  # the library SDL loaded for Kivy's context
    except (OSError, AttributeError):
        from kivy.graphics.opengl import glFinish

        return glFinish


def step_name(step: str, item: Any, tr: Any) -> str:
    """The indicator's name of ``step`` for ``item``: a travel document is read, a query's result is seen."""
    if step == "identify" and item.identity == "travel_document":
        return tr("Read document")
    if step == "produce" and (item.slip_on_request or not item.outputs):
        return tr("See results")
    return tr(STEP_NAMES[step])


class StepBar(Label):
    """Where the resident is in this visit: "Step 2 of 5" and every step's name, from the item's path.

    ``step`` is the workflow step the screen serves; the count comes from
    ``Transaction.steps()`` (the steps done and those planned), read again whenever the
    screen is about to show and when the language changes.
    """

    step = StringProperty("")
    n = NumericProperty(0)  # the step's number and the visit's count of steps (0: none shown); voice reads them
    total = NumericProperty(0)
    # One line (the count and this step's name) while the keyboard panel takes the lower screen.
    compact = BooleanProperty(False)

    def on_parent(self, *_args: Any) -> None:
        """Follow the enclosing screen's entries and the language."""
        screen = self.parent
        while screen is not None and not isinstance(screen, Screen):
            screen = screen.parent
        if screen is not None:
            screen.bind(on_pre_enter=self.refresh)
            App.get_running_app().bind(lang=self.refresh)
            self.bind(compact=self.refresh)

    def refresh(self, *_args: Any) -> None:
        """The count and the step names in the current language (empty outside a transaction)."""
        app = App.get_running_app()
        txn = app.txn
        steps = [getattr(s, "value", s) for s in txn.steps()] if txn is not None else []
        if self.step not in steps:
            self.text = ""
            self.n = self.total = 0
            return
        names = [step_name(s, txn.item, app.tr) for s in steps]
        at = steps.index(self.step)
        self.n, self.total = at + 1, len(steps)
        count = app.tr("Step {n} of {total}: {name}").format(n=at + 1, total=len(steps), name=names[at])
        names[at] = f"[b][color={CURRENT_STEP_COLOUR}]{names[at]}[/color][/b]"
        self.text = f"[b]{count}[/b]" + ("" if self.compact else "\n" + "  ·  ".join(names))


# Kivy's TextInput keeps every line it has drawn in these caches for 60 s after its last use, under a key that holds
# the line's text: what the last resident typed (a name, an ID number, a phone number) and its pixels.
TEXT_INPUT_CACHES = ("textinput.label", "textinput.width")


def forget_residents(manager: Any) -> None:
    """Every screen of ``manager`` not on show forgets what the last resident left on it (``forget``), and Kivy's
    text input caches forget the lines they drew."""
    from kivy.cache import Cache

    for screen in manager.screens:
        if screen is not manager.current_screen and hasattr(screen, "forget"):
            screen.forget()
    for category in TEXT_INPUT_CACHES:
        Cache.remove(category)  # the lines still on show keep their own textures; others are drawn again when needed


def detail_rows(box: Any, rows: Any, *, stack: bool = False) -> None:
    """Fill ``box`` with (label, value, data) rows: the label in the screen's language, the value
    beside it (under it in care mode when ``stack``: a long code), marked as data (``lang_exempt``)
    when it is the resident's own or their record's."""
    box.clear_widgets()
    for label, value, data in rows:
        row = Factory.DetailRow()
        row.stack = stack  # a property the kv rule declares (not a constructor argument)
        # Body's own type size (40 px, 60 in care mode): a size given here would not follow the mode.
        name = Factory.DetailName(text=label)
        shown = (Factory.Datum if data else Factory.Body)(text=value)
        for part in (name, shown):
            row.add_widget(part)
        box.add_widget(row)
