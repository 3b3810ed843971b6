"""The kiosk's own on-screen keyboard: pinyin (中) and Latin (英) letters, or a number pad.

It is a panel inside the form screen, not Kivy's floating docked keyboard: the form gives
it the bottom of the screen and its fields shrink and scroll above it, so neither the field
being typed into nor the "Next" button is ever covered. Keys are ordinary buttons; nothing
here takes the keyboard focus, so the field keeps it while keys are touched. The pinyin
candidates come from :mod:`kiosk.services.pinyin`.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button

from kiosk.services import pinyin

KV_FILE = Path(__file__).with_suffix(".kv")
LETTER_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
# Care mode: fewer, larger keys a row, in the order of the alphabet the residents learnt pinyin by.
CARE_LETTER_ROWS = ("1234567890", "abcdefg", "hijklmn", "opqrstu", "vwxyz")
PUNCTUATION = {"zh": ("，", "。", "-"), "en": (",", ".", "-")}
PAGE_SIZE = 5
CARE_PAGE_SIZE = 3
MAX_RUN = 4  # the most characters the demo types as one pinyin string
# Which fields get the number pad, and the one extra key each needs beside 0-9.
PAD_EXTRA = {"digits": "", "phone": "", "number": ".", "date": "-", "id_number": "X"}
# Which fields are a person's name (surnames first among the candidates).
NAME_FIELDS = ("name",)


def is_name_field(field_name: str) -> bool:
    """True for a field holding a person's name ("name", "tenant_name"; not "dog_name")."""
    return field_name in NAME_FIELDS or (field_name.endswith("_name") and field_name != "dog_name")


def _warm_up() -> None:
    # The index takes a couple of seconds to build: do it before the first key press.
    threading.Thread(target=pinyin.warm_up, name="pinyin-warm-up", daemon=True).start()


def _panel(widget: Any) -> Any:
    parent = widget.parent
    while parent is not None and not isinstance(parent, ImePanel):
        parent = parent.parent
    return parent


# Keys that say what they do in the screen's language; every other key types a character or
# switches the input mode (中/英, ABC), and reads the same in either language.
WORDED_KEYS = frozenset({"backspace", "space", "done", "prev", "next"})


class ImeKey(Button):
    """One key; ``key`` is what it types, or an action (backspace, space, lang, caps, done, prev, next)."""

    key = StringProperty("")
    # Letter, digit, punctuation and mode keys are exempt from the one-language rule.
    lang_exempt = BooleanProperty(True)

    def on_key(self, _widget: Any, key: str) -> None:
        """A worded key follows the screen's language; the others are exempt."""
        self.lang_exempt = key not in WORDED_KEYS

    def on_release(self) -> None:
        """Type this key into the panel's field."""
        panel = _panel(self)
        if panel is not None:
            panel.press(self.key)


class CandidateKey(Button):
    """One candidate on the bar; touching it puts its text into the field."""

    candidate = ObjectProperty(None, allownone=True)
    lang_exempt = BooleanProperty(True)  # what the resident is typing: data

    def on_release(self) -> None:
        """Put this candidate into the panel's field."""
        panel = _panel(self)
        if panel is not None and self.candidate is not None:
            panel.choose(self.candidate)


class ImePanel(BoxLayout):
    """The keyboard panel; :meth:`attach` it to a TextInput, :meth:`close` it when done."""

    open = BooleanProperty(False)
    pad = BooleanProperty(False)  # number pad instead of letters
    chinese = BooleanProperty(True)
    caps = BooleanProperty(False)
    composition = StringProperty("")  # pinyin typed and not yet turned into characters
    page = NumericProperty(0)
    pages = NumericProperty(0)
    pad_extra = StringProperty("")
    spelled = StringProperty("")  # the composition as segmented syllables, for the resident to read
    candidates = ListProperty([])
    target = ObjectProperty(None, allownone=True)
    name_field = BooleanProperty(False)
    backspace_text = StringProperty("")

    def on_kv_post(self, *_args: Any) -> None:
        """Build the key rows (letters and pad); which one shows follows ``pad``, the letters' layout the mode."""
        from kivy.app import App

        self._app = App.get_running_app()
        self._lay_out_letters()
        for row, keys in zip((self.ids.pad_1, self.ids.pad_2, self.ids.pad_3, self.ids.pad_4),
                             ("123", "456", "789", ("extra", "0", "backspace"))):
            for key in keys:
                row.add_widget(ImeKey(key=key))
        # Strong references: ids are weak, and the section not on show is out of the tree.
        self._sections = {"letters": (self.ids.spelled.__self__, self.ids.candidate_bar.__self__,
                                      self.ids.letters.__self__),
                          "pad": (self.ids.pad.__self__,)}
        self._drop_composition()
        self._app.bind(care=self._mode_changed)
        self.bind(chinese=self._relabel, caps=self._relabel, pad_extra=self._relabel, backspace_text=self._relabel,
                  pad=self._arrange,
                  open=self._arrange)
        self._arrange()
        _warm_up()

    @property
    def care(self) -> bool:
        """Whether the panel is laid out for care mode."""
        return bool(getattr(self._app, "care", False))

    @property
    def page_size(self) -> int:
        """Candidates a page: fewer, larger ones in care mode."""
        return CARE_PAGE_SIZE if self.care else PAGE_SIZE

    def _mode_changed(self, *_args: Any) -> None:
        """Lay the keys out for the new mode now if the panel is open, else when it next opens."""
        self._laid_out_for = None
        if self.open:
            self._lay_out_letters()

    def _lay_out_letters(self, *_args: Any) -> None:
        """The letter rows and the candidate bar for the mode: QWERTY and five candidates, or care mode's layout."""
        rows = (self.ids.row_digits, self.ids.row_q, self.ids.row_a, self.ids.row_z, self.ids.row_care)
        for row in rows:
            row.clear_widgets()
        self._laid_out_for = self.care
        letters = CARE_LETTER_ROWS if self.care else LETTER_ROWS
        for row, keys in zip(rows, letters):
            for key in keys:
                row.add_widget(ImeKey(key=key, lang_exempt=True))
        # Backspace where the hand finds it: after the home row, or after the last letters in care mode.
        (rows[-1] if self.care else self.ids.row_a).add_widget(ImeKey(key="backspace", size_hint_x=2 if self.care else 1))
        for mark in PUNCTUATION["zh"][:2] if self.care else PUNCTUATION["zh"]:
            (rows[-1] if self.care else self.ids.row_z).add_widget(ImeKey(key=mark, lang_exempt=True))
        bar = self.ids.candidate_keys
        bar.clear_widgets()
        for _slot in range(self.page_size):
            bar.add_widget(CandidateKey())
        if hasattr(self, "_sections"):
            self._compose(self.composition)
            self._relabel()

    def _arrange(self, *_args: Any) -> None:
        """Show the letters (with the candidate bar) or the number pad; nothing while closed."""
        if self.open and getattr(self, "_laid_out_for", None) != self.care:
            self._lay_out_letters()
        self.clear_widgets()
        # A closed panel holds no keys at all: a disabled key lying under a form button
        # would swallow its touches.
        for widget in self._sections["pad" if self.pad else "letters"] if self.open else ():
            self.add_widget(widget)
        self._relabel()

    # --- attaching --------------------------------------------------------------------
    def attach(self, text_input: Any, *, field_type: str, field_name: str = "") -> None:
        """Open the panel for ``text_input``: a number pad for digit fields, letters otherwise."""
        self._drop_composition()
        self.target = text_input
        self.pad = field_type in PAD_EXTRA
        self.pad_extra = PAD_EXTRA.get(field_type, "")
        self.name_field = is_name_field(field_name)
        # Codes and plates are Latin letters and digits; free text starts in Chinese.
        self.chinese = field_type == "text" and not field_name.endswith(("_number", "_code", "code", "vin"))
        self.caps = field_type == "plate" or field_name in ("vin", "frame_number", "document_number")
        self.open = True

    def close(self) -> None:
        """Hide the panel; pinyin still being typed is dropped, the field keeps its text."""
        self._drop_composition()
        if self.target is not None:
            self.target.focus = False
        self.target = None
        self.open = False

    # --- keys -------------------------------------------------------------------------
    def press(self, key: str) -> None:
        """What a key does (every ImeKey calls this when released)."""
        field = self.target
        if field is None:
            return
        if key == "backspace":
            if self.composition:
                self._compose(self.composition[:-1])
            else:
                field.do_backspace()
        elif key == "lang":
            self._commit_text(self.composition)
            self.chinese = not self.chinese
        elif key == "caps":
            self.caps = not self.caps
        elif key == "space":
            if self.composition:
                self._choose(0)
            else:
                field.insert_text(" ")
        elif key == "done":
            if self.composition:
                self._choose(0)
            self.close()
        elif key == "prev":
            self.page = max(0, self.page - 1)
            self._show_page()
        elif key == "next":
            self.page = min(self.pages - 1, self.page + 1)
            self._show_page()
        elif key == "extra":
            field.insert_text(self.pad_extra)
        elif self.chinese and not self.pad and key.isalpha() and key.isascii():
            self._compose(self.composition + key)
        else:
            self._commit_text(self.composition)
            text = key.upper() if self.caps and key.isalpha() else key
            if not self.chinese and key in PUNCTUATION["zh"]:
                text = PUNCTUATION["en"][PUNCTUATION["zh"].index(key)]
            field.insert_text(text)

    def choose(self, candidate: pinyin.Candidate) -> None:
        """A candidate was touched: its text goes into the field, the pinyin it used leaves the composition."""
        if self.target is not None:
            self.target.insert_text(candidate.text)
        rest = self._syllables[candidate.syllables:]
        self._compose("".join(rest))

    # --- composition --------------------------------------------------------------------
    def _compose(self, letters: str) -> None:
        self.composition = letters
        self._syllables = pinyin.segment(letters) if letters else []
        self.spelled = " ".join(self._syllables)
        self._all = pinyin.candidates(letters, name=self.name_field) if letters else []
        self.pages = (len(self._all) + self.page_size - 1) // self.page_size
        self.page = 0
        self._show_page()

    def _choose(self, position: int) -> None:
        if position < len(self._all):
            self.choose(self._all[position])
        else:
            self._commit_text(self.composition)

    def _commit_text(self, letters: str) -> None:
        if letters and self.target is not None:
            self.target.insert_text(letters)
        self._drop_composition()

    def _drop_composition(self) -> None:
        self._syllables: list[str] = []
        self._all: list[pinyin.Candidate] = []
        self.composition = self.spelled = ""
        self.page = self.pages = 0
        self._show_page()

    def _show_page(self) -> None:
        size = self.page_size
        self.candidates = self._all[self.page * size:(self.page + 1) * size]
        bar = self.ids.get("candidate_keys")
        if bar is None:
            return
        for slot, key in enumerate(reversed(bar.children)):
            candidate = self.candidates[slot] if slot < len(self.candidates) else None
            key.candidate = candidate
            key.text = candidate.text if candidate else ""
            key.disabled = candidate is None

    def _relabel(self, *_args: Any) -> None:
        for key in self.all_keys():
            if len(key.key) == 1 and key.key.isalpha() and key.key.isascii():
                key.text = key.key.upper() if self.caps else key.key
            elif key.key in PUNCTUATION["zh"]:
                key.text = key.key if self.chinese else PUNCTUATION["en"][PUNCTUATION["zh"].index(key.key)]
            elif key.key == "extra":
                key.text = self.pad_extra
                key.disabled = not self.pad_extra
            elif key.key.isdigit():
                key.text = key.key
            elif key.key == "backspace":
                key.text = self.backspace_text

    # --- for the demo driver and tests ----------------------------------------------------
    def all_keys(self) -> list[ImeKey]:
        """Every key of the panel, letters and pad alike (shown or not)."""
        return [w for section in self._sections.values() for top in section
                for w in top.walk(restrict=True) if isinstance(w, ImeKey)]

    def key(self, key: str) -> ImeKey:
        """The key on show that types ``key`` (a character, or an action name); KeyError if none."""
        for widget in self.walk(restrict=True):
            # A row put away (care mode's digits while typing pinyin) holds disabled keys.
            if isinstance(widget, ImeKey) and widget.key == key and not widget.parent.disabled:
                return widget
        if self.pad and key and key == self.pad_extra:
            return self.key("extra")
        raise KeyError(key)

    def candidate_key(self, text: str) -> CandidateKey | None:
        """The candidate on the bar showing ``text`` now, or None."""
        for widget in self.ids.candidate_keys.children:
            if widget.candidate is not None and widget.candidate.text == text:
                return widget
        return None

    def keys_for(self, text: str) -> list[ImeKey]:
        """The keys to touch, in order, to type Latin letters, digits, space and ``,.-`` (no pinyin)."""
        out: list[ImeKey] = []
        chinese, caps = self.chinese and not self.pad, self.caps
        for char in text:
            if char.isalpha() and not self.pad:
                if chinese:
                    out.append(self.key("lang"))
                    chinese = False
                if char.isupper() != caps and not char.isdigit():
                    out.append(self.key("caps"))
                    caps = not caps
                out.append(self.key(char.lower()))
            elif char.isdigit() and chinese and self.care and not self.pad:
                out.append(self.key("lang"))  # care mode shows the digits with the Latin letters only
                chinese = False
                out.append(self.key(char))
            elif char == " ":
                out.append(self.key("space"))
            elif char in PUNCTUATION["en"] and not self.pad:
                out.append(self.key(PUNCTUATION["zh"][PUNCTUATION["en"].index(char)]))
            else:
                out.append(self.key(char))
        return out

    def can_type(self, text: str) -> bool:
        """True when every character of ``text`` has a key or a pinyin reading on this panel."""
        return all(char.isascii() and (char.isalnum() or char in " ,.-") or char in PUNCTUATION["zh"]
                   or (_is_hanzi(char) and bool(pinyin.reading(char))) for char in text)

    def next_key(self, goal: str) -> Any:
        """The next key or candidate a resident touches to make the field read ``goal``; None when it does.

        Chinese characters are typed as pinyin (as many syllables at once as give a
        candidate that starts the rest of ``goal``) and picked from the candidate bar,
        paging when needed; everything else goes through :meth:`keys_for`. Raises
        ValueError for a character the panel cannot type.
        """
        field = self.target
        if field is None:
            raise ValueError("the keyboard panel is not attached to a field")
        done = field.text
        if not goal.startswith(done):
            return self.key("backspace")
        rest = goal[len(done):]
        if not rest or not _is_hanzi(rest[0]):
            if self.composition:
                return self.key("backspace")
            return self.keys_for(rest[0])[0] if rest else None
        if not self.chinese:
            return self.key("lang")
        if not self.composition:
            self._plan = self._plan_for(rest)
        plan = getattr(self, "_plan", "")
        if not plan.startswith(self.composition):
            return self.key("backspace")
        if len(self.composition) < len(plan):
            return self.key(plan[len(self.composition)])
        position = _best_candidate(self._all, rest)
        if position is None:
            return self.key("backspace")  # typed pinyin gives nothing useful: start this part again
        if position // self.page_size != self.page:
            return self.key("next" if position // self.page_size > self.page else "prev")
        return self.candidate_key(self._all[position].text)

    def _plan_for(self, rest: str) -> str:
        """The pinyin to type for the Chinese at the start of ``rest``: the longest run a candidate covers."""
        run = _hanzi_run(rest)
        for size in range(len(run), 0, -1):
            letters = pinyin.reading(run[:size])
            if not letters:
                continue
            found = pinyin.candidates(letters, name=self.name_field)
            position = _best_candidate(found, rest)
            if position is not None and len(found[position].text) == size:
                return letters
        raise ValueError(f"the keyboard cannot type {run[:1]!r}")


def _best_candidate(found: list[pinyin.Candidate], rest: str) -> int | None:
    """Position of the longest candidate that ``rest`` starts with (the first of equals)."""
    best: tuple[int, int] | None = None
    for position, candidate in enumerate(found):
        if rest.startswith(candidate.text) and (best is None or len(candidate.text) > best[0]):
            best = (len(candidate.text), position)
    return None if best is None else best[1]


def _is_hanzi(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def _hanzi_run(text: str) -> str:
    run = ""
    for char in text[:MAX_RUN]:
        if not _is_hanzi(char):
            break
        run += char
    return run


if str(KV_FILE) not in Builder.files:
    Builder.load_file(str(KV_FILE))
