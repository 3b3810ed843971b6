"""Masking of personal data for screens and logs, and a log filter that applies it.

Names keep the first and last character (王*明); ID numbers keep the first four and the
last four characters (3701**********123X), as public-security kiosks display them.
"""
from __future__ import annotations

import logging
import re

_ID_RE = re.compile(r"\b(\d{6})(\d{8})(\d{3}[\dXx])\b")
_PHONE_RE = re.compile(r"\b(1[3-9]\d)(\d{4})(\d{4})\b")


def mask_name(name: str) -> str:
    """王小明 → 王*明; 王明 → 王*; empty stays empty."""
    name = name.strip()
    if len(name) <= 1:
        return "*" if name else ""
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id_number(number: str) -> str:
    """370102199003071234 → 3701**********1234; short values are masked whole."""
    number = number.strip()
    if len(number) < 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_text(text: str) -> str:
    """Mask every ID-number and mobile-number shaped run in free text."""
    text = _ID_RE.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


class MaskingFilter(logging.Filter):
    """Log filter that masks ID and phone numbers, plus any names registered for the session."""

    def __init__(self) -> None:
        super().__init__()
        self._names: set[str] = set()

    def register(self, *values: str) -> None:
        """Mask these exact strings (the session's name, address) until forget() is called."""
        self._names.update(v for v in values if v and len(v) >= 2)

    def forget(self) -> None:
        """Drop the session's registered values when it ends."""
        self._names.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        for value in sorted(self._names, key=len, reverse=True):
            masked = masked.replace(value, mask_name(value))
        if masked != msg:
            record.msg, record.args = masked, None
        return True


MASKING_FILTER = MaskingFilter()
