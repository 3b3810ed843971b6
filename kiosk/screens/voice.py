"""The screens' side of voice guidance: what each screen says when it appears, and the resident's voice controls.

:class:`VoiceGuide` is mixed into the app. When a screen appears it asks ``runtime.speech``
(:class:`kiosk.services.speech.SpeechService`, which speaks on its own thread and returns
at once) to say, interrupting what sounded before: the screen's title, the step ("第2步，共5步"),
its headings and its instruction lines, all read from the widgets as they are shown (the
same catalog entries, so the spoken and the shown text cannot drift). Errors, refusals,
the idle warning, the officer's reply and the done screen's results are said as they
appear. Personal data (a screen's ``personal_ids``, anything typed into a field) goes as
``Personal`` parts: spoken only while listening is private, otherwise its masked form.
With full read-out (the 语音引导 switch on the home screen) every line and control is read
as shown, and the voice bar (repeat, quieter, louder, rate) appears under the header. Any
touch or key stops speech at once; the session's end returns volume, rate and read-out to
the station's defaults.

This module imports no Kivy widget at load (the app imports it before the window exists).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterator

from kivy.clock import Clock
from kivy.properties import BooleanProperty

from kiosk.services.speech import Personal, personal, step

log = logging.getLogger(__name__)

# Screens whose content is the technician's, never spoken to a resident.
SILENT_SCREENS = frozenset({"maintenance_pin", "maintenance"})
# The rate steps the voice bar's rate button cycles through, in steps of [speech] rate_step_wpm.
RATE_CYCLE = ((0, "Speech rate: normal"), (2, "Speech rate: fast"), (-2, "Speech rate: slow"))
_MARKUP = re.compile(r"\[/?(?:b|i|u|s|color|size|font|sub|sup|ref|anchor)(?:=[^\]]*)?\]")
_ICONS = re.compile("[\ue000-\uf8ff]")  # icon font glyphs (Font Awesome) in the private use area say nothing
_END = "。！？；：，.!?;:,"


def plain(text: str) -> str:
    """A label's text without Kivy markup, its lines joined by spaces."""
    text = _ICONS.sub("", _MARKUP.sub("", text))
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _visible(widget: Any, root: Any) -> bool:
    """Whether ``widget`` is drawn: neither it nor a parent up to ``root`` is fully transparent."""
    # Opacity only: a label given its text just now has its height from the texture on the next frame.
    for _depth in range(64):
        if widget is None:
            return True
        if widget.opacity <= 0:
            return False
        if widget is root:
            return True
        widget = widget.parent
    return True


def _sentence(text: str, lang: str) -> str:
    """``text`` ended by a full stop of its language (so the engine pauses after it)."""
    text = text.strip()
    if not text or text[-1] in _END:
        return text
    return text + ("。" if lang == "zh_CN" else ".")


def _kind(widget: Any) -> str:
    return type(widget).__name__


def header_title(screen: Any) -> str:
    """The title of the screen's header (the home screen's too, whose header gives its room to the switches)."""
    for widget in screen.walk(restrict=True):
        ids = getattr(widget, "ids", {})
        if "title_label" in ids and "title_row" in ids:
            return plain(ids["title_label"].text or getattr(widget, "title", ""))
    return ""


def step_clause(screen: Any, lang: str) -> str:
    """"第2步，共5步" when the screen's step indicator shows a step, else ''."""
    for widget in screen.walk(restrict=True):
        if _kind(widget) == "StepBar" and getattr(widget, "total", 0) and widget.text:
            return step(widget.n, widget.total, lang)
    return ""


def main_parts(screen: Any, lang: str) -> list[Any]:
    """What a screen says when it appears: title, step, headings, its instruction and message lines."""
    parts: list[Any] = []
    seen: set[str] = set()

    def add(text: str, kind: str = "", name: str = "") -> None:
        text = plain(text)
        if not text or text in seen:
            return
        seen.add(text)
        if kind:
            parts.append(personal(kind, _private(screen, name) or text, lang))
            parts.append("。" if lang == "zh_CN" else ". ")
        else:
            parts.append(_sentence(text, lang) + ("" if lang == "zh_CN" else " "))

    add(header_title(screen))
    add(step_clause(screen, lang))
    personal_ids = dict(getattr(screen, "personal_ids", {}))
    by_widget = {id(w): name for name, w in screen.ids.items()}
    for widget in screen.walk(restrict=True):
        if _kind(widget) == "Heading" and _visible(widget, screen):
            name = by_widget.get(id(widget.proxy_ref), "")
            add(widget.text, personal_ids.get(name, ""), name)
    for name in getattr(screen, "spoken_ids", ()):
        widget = screen.ids.get(name)
        if widget is not None and _visible(widget, screen):
            add(text_of(widget, lang), personal_ids.get(name, ""), name)
    return _masked_once(parts)


def text_of(widget: Any, lang: str) -> str:
    """A label's text, or a box of detail rows read one row a line as "label：value"."""
    text = getattr(widget, "text", None)
    if isinstance(text, str):
        return text
    colon = "：" if lang == "zh_CN" else ": "
    lines = []
    for row in reversed(widget.children):  # Kivy keeps children newest first
        cells = [plain(c.text) for c in reversed(row.children) if isinstance(getattr(c, "text", None), str)]
        if any(cells):
            lines.append(colon.join(c for c in cells if c))
    return "\n".join(lines)


def _private(screen: Any, widget_id: str) -> str:
    """What private listening hears for a personal line where it differs from the (masked) screen text."""
    private_text = getattr(screen, "private_text", None)
    return plain(private_text(widget_id)) if private_text is not None and widget_id else ""


def _masked_once(parts: list[Any]) -> list[Any]:
    """The same masked phrase said once, not once per hidden line."""
    out: list[Any] = []
    said: set[str] = set()
    skip_stop = False
    for part in parts:
        if isinstance(part, Personal):
            if part.masked in said:
                out.append(Personal(part.text, ""))
                skip_stop = True
                continue
            said.add(part.masked)
        elif skip_stop:
            skip_stop = False
            out.append(" ")
            continue
        out.append(part)
    return out


def full_lines(screen: Any, app: Any) -> list[Any]:
    """Every line and control as shown, top to bottom: "开始办理，按钮"; typed text and personal lines as Personal."""
    from kivy.uix.button import Button
    from kivy.uix.label import Label
    from kivy.uix.textinput import TextInput
    from kivy.uix.togglebutton import ToggleButton

    from kiosk.screens.base import OptionButton

    lang = app.lang
    personal_ids = dict(getattr(screen, "personal_ids", {}))
    by_widget = {id(w): name for name, w in screen.ids.items()}
    parts: list[Any] = []
    for widget in screen.walk(restrict=True):
        if not _visible(widget, screen):
            continue
        if isinstance(widget, TextInput):
            role = app.tr("text field")
            if widget.text:
                parts += [personal("other", widget.text, lang), f"，{role}。" if lang == "zh_CN" else f", {role}. "]
            else:
                parts.append(_sentence(f"{plain(widget.hint_text)}，{role}" if lang == "zh_CN"
                                       else f"{plain(widget.hint_text)}, {role}", lang) + " ")
            continue
        if not isinstance(widget, Label):
            continue
        text = plain(widget.text)
        if not text:
            continue
        if isinstance(widget, OptionButton):
            # One of a field's options (or the rating): said as the keypad's focus says it.
            state = app.tr("selected" if widget.state == "down" else "not selected")
            sep = "，" if lang == "zh_CN" else ", "
            text = f"{text}{sep}{app.tr('option')}{sep}{state}"
        elif isinstance(widget, Button):
            role = app.tr("button")
            if isinstance(widget, ToggleButton):
                role += ("，" if lang == "zh_CN" else ", ") + app.tr("on" if widget.state == "down" else "off")
            if widget.disabled:
                role += ("，" if lang == "zh_CN" else ", ") + app.tr("not available")
            text = f"{text}，{role}" if lang == "zh_CN" else f"{text}, {role}"
        own = by_widget.get(id(widget.proxy_ref), "")
        name = _personal_owner(widget, screen, by_widget, personal_ids)
        kind = personal_ids.get(name, "")
        if not kind and isinstance(widget, OptionButton) and widget.lang_exempt:
            kind = "other"  # a lookup's options are the resident's own records
        if kind:
            private = _private(screen, name) if name == own else ""  # a row of a personal box: as shown
            parts += [personal(kind, private or text, lang), "。" if lang == "zh_CN" else ". "]
        else:
            parts.append(_sentence(text, lang) + ("" if lang == "zh_CN" else " "))
    return _masked_once(parts)


def _personal_owner(widget: Any, screen: Any, by_widget: dict[int, str], personal_ids: dict[str, str]) -> str:
    """The id naming ``widget``, or the personal id of a box holding it (a detail row of the confirm summary,
    the done screen's results), so that full read-out masks each row as the main prompts mask the box."""
    own = by_widget.get(id(widget.proxy_ref), "")
    if own in personal_ids:
        return own
    node = widget.parent
    for _depth in range(16):
        if node is None or node is screen:
            break
        name = by_widget.get(id(node.proxy_ref), "")
        if name in personal_ids:
            return name
        node = node.parent
    return own


class VoiceGuide:
    """Mixed into the KioskApp: speaks each screen as it appears and keeps the resident's voice controls."""

    # Full read-out on (the 语音引导 switch): every line and control is read, the voice bar shows.
    voice_full = BooleanProperty(False)

    _voice_watched: set[str]
    _rate_at: int

    @property
    def speech(self) -> Any:
        """The runtime's SpeechService (None where the runtime has none)."""
        return getattr(self.runtime, "speech", None)

    def voice_start(self) -> None:
        """Follow the language, the idle warning and the help bar (called once the app is built)."""
        self._voice_watched = set()
        self._rate_at = 0
        speech = self.speech
        if speech is not None:
            speech.set_language(self.lang)
            self.voice_full = speech.readout == "full"
        self.bind(lang=self._voice_language, idle_warning=self._voice_idle_warning,
                  help_problem=self._voice_help_problem)

    # --- screens ------------------------------------------------------------------------------
    def voice_screen_changed(self, name: str) -> None:
        """A screen appeared (its on_pre_enter has filled its texts): speak it now, before its first frame is drawn.

        ``say`` only queues, so the touch that led here is never kept waiting; asking before the
        frame gives the speaking thread its head start while the UI thread draws. The first screen
        (home, as the kiosk starts) is said once its first frame is out: rendering it then imported
        pypinyin (half a second) beside the UI thread building that frame, with nobody yet to hear it.
        """
        first_frame = getattr(self, "first_frame", None)
        if first_frame is not None and not first_frame.drawn:
            first_frame.then(lambda: self.announce_screen(name))
            return
        self.announce_screen(name)

    def announce_screen(self, name: str | None = None, *, interrupt: bool = True) -> None:
        """Say the current screen: the main prompts, then (full read-out) every line and control."""
        speech = self.speech
        if speech is None or self.sm is None:
            return
        name = name or self.sm.current
        if name != self.sm.current or name in SILENT_SCREENS:
            return
        screen = self.sm.get_screen(name)
        self._watch_alerts(screen)
        speech.say(main_parts(screen, self.lang), self.lang, interrupt=interrupt)
        if self.voice_full:
            speech.say(full_lines(screen, self), self.lang, level="full")

    def _watch_alerts(self, screen: Any) -> None:
        """Say a screen's message lines (a card not read, a face missed, a slip not printed) as they appear."""
        if screen.name in self._voice_watched:
            return
        self._voice_watched.add(screen.name)
        for name in getattr(screen, "alert_ids", ()):
            widget = screen.ids.get(name)
            if widget is not None:
                widget.bind(text=lambda _w, text, s=screen: self._voice_alert(s, text))

    def _voice_alert(self, screen: Any, text: str) -> None:
        if self.speech is not None and text.strip() and self.sm is not None and self.sm.current == screen.name:
            self.speech.say(_sentence(plain(text), self.lang), self.lang, interrupt=True)

    def _voice_language(self, _app: Any, lang: str) -> None:
        """Speech follows the screen's language: say the screen again in it."""
        if self.speech is not None:
            self.speech.set_language(lang)
            Clock.schedule_once(lambda _dt: self.announce_screen(), 0)

    def _voice_idle_warning(self, _app: Any, warning: bool) -> None:
        if not warning or self.speech is None:
            return
        lines = [self.tr("Are you still there?"),
                 self.tr("Returning to the home page in {seconds} seconds.").format(seconds=self.idle_left),
                 self.idle_wipe, self.tr("I need more time")]
        self.speech.say(" ".join(_sentence(line, self.lang) for line in lines if line), self.lang, interrupt=True)

    def _voice_help_problem(self, _app: Any, problem: str) -> None:
        if problem and self.speech is not None:
            self.speech.say(_sentence(problem, self.lang), self.lang, interrupt=True)

    def say_officer_reply(self, reply: str) -> None:
        """The duty officer's answer, said as its banner appears."""
        if self.speech is not None:
            heading = _sentence(self.tr("The duty officer answers"), self.lang)
            self.speech.say(f"{heading} {_sentence(reply, self.lang)} {_sentence(self.tr('I have read it'), self.lang)}",
                            self.lang, interrupt=True)

    # --- the resident's controls ----------------------------------------------------------------
    def voice_interrupt(self) -> None:
        """Any touch or key: stop speaking at once."""
        if self.speech is not None:
            self.speech.interrupt()

    def toggle_voice(self) -> None:
        """The 语音引导 switch: full read-out on (every line and control, the voice bar) or back to main prompts."""
        speech = self.speech
        if speech is None:
            return
        speech.set_readout("main" if self.voice_full else "full")
        self.voice_full = speech.readout == "full"
        self.announce_screen()

    def voice_repeat(self) -> None:
        """Say the last utterance again."""
        if self.speech is not None:
            self.speech.repeat()

    def voice_louder(self) -> None:
        """One volume step up, said at the new volume."""
        self._voice_volume(+1)

    def voice_quieter(self) -> None:
        """One volume step down, said at the new volume."""
        self._voice_volume(-1)

    def _voice_volume(self, direction: int) -> None:
        speech = self.speech
        if speech is None:
            return
        speech.volume_up() if direction > 0 else speech.volume_down()
        levels = len(speech.defaults.volume_levels_db)
        speech.say(self.tr("Volume {level} of {levels}").format(level=speech.volume_level + 1, levels=levels),
                   self.lang, interrupt=True)

    def voice_rate(self) -> None:
        """The next speech rate (normal, fast, slow), said at that rate."""
        speech = self.speech
        if speech is None:
            return
        self._rate_at = (self._rate_at + 1) % len(RATE_CYCLE)
        steps, msgid = RATE_CYCLE[self._rate_at]
        speech.set_rate(speech.defaults.rate_wpm + steps * speech.defaults.rate_step_wpm)
        speech.say(self.tr(msgid), self.lang, interrupt=True)

    def voice_session_ended(self) -> None:
        """The session ended: silence; volume, rate, read-out and privacy back to the station's defaults."""
        speech = self.speech
        self._rate_at = 0
        if speech is not None:
            speech.end_session()
            speech.set_language(self.lang)
            self.voice_full = speech.readout == "full"


def voice_lines(screen: Any, app: Any) -> Iterator[str]:
    """The main and full read-out of ``screen`` as text without personal data (tests, the ui audit)."""
    from kiosk.services.speech import Utterance

    yield Utterance.of(main_parts(screen, app.lang), app.lang).text(private=False)
    yield Utterance.of(full_lines(screen, app), app.lang).text(private=False)
