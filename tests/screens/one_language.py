"""The one-language rule read off a widget tree: texts on show in the other language, exempt widgets skipped.

A Chinese screen shows no Latin letters and an English one no Chinese characters or
Chinese punctuation, except in widgets marked ``lang_exempt`` (the language button, the
keyboard's letter and mode keys, data such as names, plates, codes and reference numbers).
"""
from __future__ import annotations

import re
from typing import Any, Iterator

LATIN = re.compile(r"[A-Za-z]")
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
MARKUP = re.compile(r"\[/?(?:b|i|u|s|color|size|font|sub|sup|ref|anchor)(?:=[^\]]*)?\]")


def on_show(widget: Any) -> bool:
    """Whether ``widget`` and every parent of it are drawn (opacity above zero)."""
    while widget is not None and widget is not widget.parent:
        if getattr(widget, "opacity", 1) <= 0:
            return False
        widget = widget.parent
    return True


def texts(root: Any) -> Iterator[tuple[Any, str]]:
    """(widget, text) for every text on show under ``root`` that is not exempt."""
    for widget in root.walk():
        if getattr(widget, "lang_exempt", False) or not on_show(widget):
            continue
        text = getattr(widget, "text", None)
        if isinstance(text, str) and text.strip():
            yield widget, MARKUP.sub("", text) if getattr(widget, "markup", False) else text
        hint = getattr(widget, "hint_text", None)
        if isinstance(hint, str) and hint.strip() and not text:
            yield widget, hint


def other_language(root: Any, lang: str) -> list[str]:
    """The texts under ``root`` that are in the other language than ``lang`` (as 'Class: text')."""
    wrong = LATIN if lang == "zh_CN" else CHINESE
    return [f"{type(w).__name__}: {t!r}" for w, t in texts(root) if wrong.search(t)]
