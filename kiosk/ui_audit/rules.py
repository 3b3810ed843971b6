"""The audit's limits and pure checks: WCAG contrast, which script a text is in, a violation record."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

LANGS = ("zh_CN", "en")
MODES = ("normal", "care")


@dataclass(frozen=True)
class Limits:
    """What one mode asks of every screen (pixels on the 1080x1920 screen, contrast ratios)."""

    target_height: float
    target_width: float
    text_px: float
    contrast: float


# Normal: ADA §707 / EN 301 549 sized targets, WCAG 1.4.3 contrast. Care mode: 1.5x text,
# larger targets, WCAG 1.4.6 (enhanced) contrast.
LIMITS = {"normal": Limits(target_height=120, target_width=96, text_px=40, contrast=4.5),
          "care": Limits(target_height=160, target_width=96, text_px=60, contrast=7.0)}

RULES = ("target_height", "target_width", "text_size", "contrast", "overflow", "clipped", "language")

# English: a run of two or more Latin letters (a word; "H01" or the "s" of "10 s" are codes and units).
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Chinese: CJK ideographs, CJK punctuation and full-width forms.
_CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class Violation:
    """One failed check: which rule, on which widget, the value found and the limit it broke."""

    rule: str
    widget: str
    value: Any
    limit: Any

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: rule, widget, value, limit."""
        return asdict(self)


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour given as 0..1 floats."""
    r, g, b = (_linear(float(c)) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg: Sequence[float], bg: Sequence[float]) -> float:
    """WCAG contrast ratio (1..21) of two sRGB colours (0..1 floats)."""
    a, b = luminance(fg), luminance(bg)
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


def blend(fg: Sequence[float], alpha: float, bg: Sequence[float]) -> tuple[float, float, float]:
    """``fg`` drawn with ``alpha`` over ``bg`` (what the screen shows)."""
    return tuple(alpha * f + (1 - alpha) * b for f, b in zip(fg[:3], bg[:3]))  # type: ignore[return-value]


def wrong_script(text: str, lang: str) -> str:
    """The first piece of ``text`` in the other language ('' when none): English words on a Chinese screen,
    Chinese on an English one."""
    found = (_LATIN_WORD if lang == "zh_CN" else _CHINESE).search(text)
    return found.group(0) if found else ""
