"""Masking of personal data for screens and logs, and a log filter that applies it.

Names keep the first and last character (王*明); ID numbers keep the first four and the
last four characters (3701**********123X), as public-security kiosks display them; mobile
numbers the first three and last four (138****8000, +86 kept); passport and permit numbers
the first character and the last two (E******78).

Numbers are found by their digits' edges, not by ``\b``: Python counts Chinese characters as
word characters, so ``身份证370102…`` has no word boundary before the number. Found are 18-
and 15-digit ID numbers, mobile numbers with or without +86/0086 and separators, passport
and permit numbers by their shapes (E12345678, EA1234567, G/D/S/P, C and L permits, H/M home
return permits: one or two letters then 7 to 10 digits) and any letters-and-digits value
after a label (护照, 通行证, 回乡证, 台胞证, 签证, 证件, passport, permit, document number).
The log filter also masks tracebacks and stack dumps.
"""
from __future__ import annotations

import logging
import re

_ID_RE = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")
_PHONE_RE = re.compile(r"(?<![0-9+])((?:\+|00)86[-\s]?)?(1[3-9][0-9])[-\s]?([0-9]{4})[-\s]?([0-9]{4})(?![0-9])")
# not the hyphened tail of a longer code: a kiosk reference (JN-DEMO-0001-C5321655, the terminal
# id and 8 hex digits) has that shape about one time in thirty, and the counter must read it whole
_DOC_SHAPE_RE = re.compile(r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]-)[A-Z]{1,2}[0-9]{7,10}(?![0-9A-Za-z])")
_DOC_LABEL_RE = re.compile(
    r"((?:passport|permit|document)[ _-]?(?:number|num|no\.?)?|护照|通行证|回乡证|台胞证|签证|证件)"
    r"(号码|号)?([\s:：=#'\"]*)(?=[A-Za-z<]*[0-9])([0-9A-Za-z<]{5,20})(?![0-9A-Za-z])", re.IGNORECASE)


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


def mask_document_number(number: str) -> str:
    """E12345678 → E******78; four characters or fewer are masked whole."""
    number = number.strip()
    if len(number) <= 4:
        return "*" * len(number)
    return number[0] + "*" * (len(number) - 3) + number[-2:]


def mask_text(text: str) -> str:
    """Mask every ID number, mobile number and passport or permit number in free text."""
    text = _ID_RE.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _PHONE_RE.sub(lambda m: (m.group(1) or "") + m.group(2) + "****" + m.group(4), text)
    text = _DOC_LABEL_RE.sub(lambda m: m.group(1) + (m.group(2) or "") + m.group(3) + mask_document_number(m.group(4)),
                             text)
    return _DOC_SHAPE_RE.sub(lambda m: mask_document_number(m.group(0)), text)


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

    def mask(self, text: str) -> str:
        """``text`` with numbers masked and the session's registered values replaced."""
        masked = mask_text(text)
        for value in sorted(self._names, key=len, reverse=True):
            masked = masked.replace(value, mask_name(value))
        return masked

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = self.mask(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        # A traceback is formatted after the filters ran, from exc_info, unless exc_text is
        # already there: format it now and keep the masked text (the formatter reuses it).
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


_TRACEBACKS = logging.Formatter()


MASKING_FILTER = MaskingFilter()
