"""Reads the widget tree and the rendered frame of one screen into violations of the audit's rules."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from kiosk.ui_audit.rules import Limits, Violation, blend, contrast_ratio, wrong_script

SLACK_PX = 2  # rounding in Kivy's layouts; an overflow is more than this
MARGIN_PX = 6  # the background around a label's text, read with it
SAME_COLOUR = 0.12  # colours closer than this (0..1 per channel) are one colour to the eye
_MARKUP = re.compile(r"\[/?(?:b|i|u|s|sub|sup|color|size|font|font_context|font_family|font_features|ref|anchor|text_language)(?:=[^\]]*)?\]")


@dataclass(frozen=True)
class Rect:
    """A rectangle in window pixels (origin bottom left)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        """The right edge."""
        return self.x + self.w

    @property
    def top(self) -> float:
        """The top edge."""
        return self.y + self.h

    def meet(self, other: "Rect") -> "Rect":
        """The part of this rectangle inside ``other`` (may be empty)."""
        x, y = max(self.x, other.x), max(self.y, other.y)
        return Rect(x, y, max(0.0, min(self.right, other.right) - x), max(0.0, min(self.top, other.top) - y))

    def inside(self, other: "Rect", slack: float = SLACK_PX) -> bool:
        """Whether this rectangle lies within ``other`` (give or take ``slack``)."""
        return (self.x >= other.x - slack and self.y >= other.y - slack
                and self.right <= other.right + slack and self.top <= other.top + slack)

    @property
    def empty(self) -> bool:
        """Whether it covers no pixel."""
        return self.w < 1 or self.h < 1


@dataclass(frozen=True)
class Seen:
    """A widget on show: where it is, how opaque, what bounds it must stay in, whether it may mix languages."""

    widget: Any
    rect: Rect
    opacity: float
    bounds: Rect  # the layouts around it: it must not stick out of them
    view: Rect  # what of the window shows it (a list's viewport)
    scrolled: bool  # inside a list that scrolls
    exempt: bool  # lang_exempt on it or around it


def window_rect(widget: Any) -> Rect:
    """The widget's rectangle in window pixels."""
    x, y = widget.to_window(widget.x, widget.y)
    right, top = widget.to_window(widget.right, widget.top)
    return Rect(x, y, right - x, top - y)


def seen_widgets(root: Any, window: Rect) -> Iterator[Seen]:
    """Every widget drawn under ``root``: opacity above zero all the way up, a size, and in view."""
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.gridlayout import GridLayout
    from kivy.uix.scrollview import ScrollView

    def visit(widget: Any, opacity: float, bounds: Rect, view: Rect, scrolled: bool, exempt: bool) -> Iterator[Seen]:
        opacity *= float(widget.opacity)
        if opacity <= 0.01 or widget.width < 1 or widget.height < 1:
            return
        rect = window_rect(widget)
        if rect.meet(view).empty:
            return  # scrolled out of its list's view
        exempt = exempt or bool(getattr(widget, "lang_exempt", False))
        yield Seen(widget, rect, opacity, bounds, view, scrolled, exempt)
        if isinstance(widget, ScrollView):
            view, scrolled, bounds = view.meet(rect), True, window
        elif isinstance(widget, (BoxLayout, GridLayout)):
            bounds = bounds.meet(rect) if not bounds.empty else rect
        for child in reversed(widget.children):
            yield from visit(child, opacity, bounds, view, scrolled, exempt)

    yield from visit(root, 1.0, window, window, False, False)


def widget_names(root: Any) -> dict[int, str]:
    """The kv id of every widget that has one, by the widget's identity."""
    names: dict[int, str] = {}
    for widget in root.walk(restrict=False):
        for key, value in getattr(widget, "ids", {}).items():
            target = getattr(value, "__self__", value)
            names.setdefault(id(target), key)
    return names


def describe(widget: Any, names: dict[int, str]) -> str:
    """How a report names a widget: its kv id, else its class and the start of its text."""
    name = names.get(id(widget))
    if name:
        return name
    text = str(getattr(widget, "text", "") or getattr(widget, "hint_text", "")).replace("\n", " ")
    return f"{type(widget).__name__}({text[:24]!r})" if text else type(widget).__name__


def background_under(frame: np.ndarray, rect: Rect, text_colour: Any) -> tuple[float, float, float] | None:
    """The most common colour of the frame in ``rect`` (window pixels) that is not the text's own, as 0..1
    floats (large glyphs can cover most of their box); None off the frame."""
    height, width = frame.shape[:2]
    x0, x1 = max(0, int(rect.x)), min(width, int(rect.right))
    y0, y1 = max(0, int(height - rect.top)), min(height, int(height - rect.y))
    if x1 <= x0 or y1 <= y0:
        return None
    patch = frame[y0:y1, x0:x1].reshape(-1, 3).astype(np.int32)
    packed = ((patch[:, 0] >> 2) << 12) | ((patch[:, 1] >> 2) << 6) | (patch[:, 2] >> 2)
    values, counts = np.unique(packed, return_counts=True)
    for mode in values[np.argsort(counts)[::-1][:2]]:
        chosen = patch[packed == mode].mean(axis=0) / 255
        if max(abs(float(c) - float(t)) for c, t in zip(chosen, text_colour[:3])) > SAME_COLOUR:
            break
    return (float(chosen[0]), float(chosen[1]), float(chosen[2]))


def is_target(widget: Any) -> bool:
    """Whether the resident touches it: a button of any kind or a text field."""
    from kivy.uix.behaviors import ButtonBehavior
    from kivy.uix.textinput import TextInput

    return isinstance(widget, (ButtonBehavior, TextInput))


def check_screen(root: Any, frame: Any, limits: Limits, lang: str) -> list[Violation]:
    """Every violation on the screen drawn in ``frame`` (a PIL image of the window) under ``root``."""
    from kivy.uix.label import Label
    from kivy.uix.textinput import TextInput

    pixels = np.asarray(frame.convert("RGB"))
    window = Rect(0, 0, pixels.shape[1], pixels.shape[0])
    names = widget_names(root)
    found: list[Violation] = []
    for seen in seen_widgets(root, window):
        widget = seen.widget
        name = describe(widget, names)
        if is_target(widget):
            if widget.height < limits.target_height - 0.5:
                found.append(Violation("target_height", name, round(widget.height), limits.target_height))
            if widget.width < limits.target_width - 0.5:
                found.append(Violation("target_width", name, round(widget.width), limits.target_width))
        if isinstance(widget, TextInput):
            shown = widget.text or widget.hint_text
            if shown and widget.font_size < limits.text_px - 0.5:
                found.append(Violation("text_size", name, round(widget.font_size), limits.text_px))
            if not widget.text and not seen.exempt and wrong_script(widget.hint_text, lang):
                found.append(Violation("language", name, widget.hint_text, lang))
            if not seen.scrolled and not seen.rect.inside(seen.bounds):
                found.append(Violation("clipped", name, _box(seen.rect), _box(seen.bounds)))
            continue
        if not isinstance(widget, Label) or not str(widget.text).strip():
            continue
        found.extend(_label_violations(seen, name, pixels, limits, lang))
    return found


def _box(rect: Rect) -> list[int]:
    return [round(rect.x), round(rect.y), round(rect.w), round(rect.h)]


def broken_word(label: Any) -> str:
    """A Latin word the label's wrapping cut in two ("Househ|old"), as shown; '' when none was.

    Kivy breaks a word that is wider than the line where the line ends; a label whose text
    should wrap between words needs a wider box or smaller type.
    """
    lines = getattr(getattr(label, "_label", None), "_cached_lines", None) or []
    shown = ["".join(word.text for word in line.words) for line in lines]
    text = " ".join(_MARKUP.sub("", label.text).split())
    for before, after in zip(shown, shown[1:]):
        end, start = before.rstrip()[-6:], after.lstrip()[:6]
        if end and start and end[-1].isascii() and end[-1].isalpha() and start[0].isascii() and start[0].isalpha() \
                and end + start in text:
            return f"{end}|{start}"
    return ""


def _label_violations(seen: Seen, name: str, pixels: np.ndarray, limits: Limits, lang: str) -> list[Violation]:
    """Size, overflow, clipping, contrast and language of one label (or button) on show."""
    label, rect = seen.widget, seen.rect
    found: list[Violation] = []
    if label.font_size < limits.text_px - 0.5:
        found.append(Violation("text_size", name, round(label.font_size), limits.text_px))
    tex_w, tex_h = label.texture_size
    if tex_h > label.height + SLACK_PX or tex_w > label.width + SLACK_PX:
        found.append(Violation("overflow", name, [round(tex_w), round(tex_h)],
                               [round(label.width), round(label.height)]))
    broken = broken_word(label)
    if broken:
        found.append(Violation("overflow", name, broken, "whole words"))
    if not seen.scrolled and not rect.inside(seen.bounds):
        found.append(Violation("clipped", name, _box(rect), _box(seen.bounds)))
    if not seen.exempt:
        text = _MARKUP.sub("", label.text) if getattr(label, "markup", False) else label.text
        stray = wrong_script(text, lang)
        if stray:
            found.append(Violation("language", name, stray, lang))
    if label.disabled:
        return found  # WCAG exempts inactive controls from contrast
    text_rect = Rect(rect.x + (rect.w - tex_w) / 2 - MARGIN_PX, rect.y + (rect.h - tex_h) / 2 - MARGIN_PX,
                     tex_w + 2 * MARGIN_PX, tex_h + 2 * MARGIN_PX).meet(rect).meet(seen.view)
    background = background_under(pixels, text_rect, label.color) if not text_rect.empty else None
    if background is not None:
        color = label.color
        shown = blend(color, float(color[3]) * seen.opacity, background)
        ratio = contrast_ratio(shown, background)
        if ratio < limits.contrast - 0.005:
            found.append(Violation("contrast", name, round(ratio, 2), limits.contrast))
    return found
