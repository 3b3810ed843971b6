"""What screens hand the speech service: text with its personal-data parts and its codes marked.

An utterance is a sequence of parts: plain text, ``Personal`` (a name, an ID number, an
address, a plate, an amount owed: spoken only while listening is private, otherwise its
``masked`` form such as "身份证号已读取" is said) and ``Spell`` (a reference or verification
code, read character by character). ``compose`` fills a translated template's ``{name}``
placeholders with such parts, so the spoken text comes from the same catalog entry as the
shown text. No Kivy here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import Any, Iterable, Literal, Union

from kiosk.privacy import mask_text
from kiosk.services.speech.reading import spell_en, spell_zh

Level = Literal["main", "full"]


@dataclass(frozen=True)
class Personal:
    """Personal data in an utterance: ``text`` only while private, else ``masked`` ('' says nothing)."""

    text: str
    masked: str = ""

    def __str__(self) -> str:
        return self.masked


@dataclass(frozen=True)
class Spell:
    """Text read character by character: a reference, a verification code."""

    text: str

    def __str__(self) -> str:
        return self.text


Part = Union[str, Personal, Spell]


def compose(template: str, **values: Any) -> tuple[Part, ...]:
    """``template`` ("办理人：{name}") with its placeholders filled; Personal and Spell values stay parts."""
    parts: list[Part] = []
    for literal, field, spec, conversion in Formatter().parse(template):
        if literal:
            parts.append(literal)
        if field is None:
            continue
        value = values[field]
        if isinstance(value, (Personal, Spell)):
            parts.append(value)
        else:
            parts.append(format(value, spec or "") if not conversion else Formatter().convert_field(value, conversion))
    return tuple(parts)


@dataclass(frozen=True)
class Utterance:
    """One thing to say, in one language, at one read-out level."""

    parts: tuple[Part, ...]
    lang: str = "zh_CN"
    level: Level = "main"

    @classmethod
    def of(cls, text: "str | Iterable[Part] | Utterance", lang: str, level: Level = "main") -> "Utterance":
        """Make an utterance from a string, a sequence of parts, or another utterance (its language kept)."""
        if isinstance(text, Utterance):
            return text
        parts = (text,) if isinstance(text, (str, Personal, Spell)) else tuple(text)
        return cls(parts, lang, level)

    @property
    def personal(self) -> bool:
        """Whether it carries personal data."""
        return any(isinstance(p, Personal) for p in self.parts)

    def text(self, private: bool) -> str:
        """The words said, as a person would write them: personal data only when ``private``."""
        out = []
        for p in self.parts:
            if isinstance(p, Personal):
                out.append(p.text if private else p.masked)
            else:
                out.append(str(p))
        return _tidy("".join(out))

    def engine_text(self, private: bool) -> str:
        """The text for the engine: as ``text``, with codes marked to be read one character at a time."""
        out = []
        for p in self.parts:
            if isinstance(p, Personal):
                out.append(p.text if private else p.masked)
            elif isinstance(p, Spell):
                out.append(spell_zh(p.text) if self.lang.startswith("zh") else f" {spell_en(p.text)} ")
            else:
                out.append(p)
        return _tidy("".join(out))

    def log_text(self) -> str:
        """What a log line may show: personal data always masked."""
        return mask_text(self.text(private=False))


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
