"""What residents type into a form field, checked and normalised by the field's type.

Plate numbers (GA 36), mainland mobile numbers, dates with range checks, digits, ID numbers
(GB 11643 check character), choices, numbers and backend lookups. :func:`normalise` is what
``FieldSpec.validate`` runs: anything that does not validate raises FieldError and nothing
else, whatever the input. The messages are English msgids, translated in catalog.po.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable

from kiosk.errors import FieldError

if TYPE_CHECKING:
    from kiosk.services.catalog import FieldSpec

# Province abbreviations used on motor-vehicle plates (GA 36).
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"  # plate letters: I and O are never used
PLATE_RE = re.compile(
    rf"^[{_PROVINCES}][{_L}]("
    rf"[{_L}0-9]{{4}}[{_L}0-9挂学警港澳]"  # ordinary blue/yellow plate: 鲁A12345
    rf"|[DF][{_L}0-9][0-9]{{4}}"  # small new-energy plate: 鲁AD12345
    rf"|[0-9]{{5}}[DF]"  # large new-energy plate: 鲁A12345D
    rf")$"
)
PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_RELATIVE_DATE_RE = re.compile(r"^today(?:([+-])(\d{1,4})([dmy]))?$")

# Resident-facing messages: English msgids, translated in locale/zh_CN/LC_MESSAGES/catalog.po.
MSG_REQUIRED = "This entry is required."
MSG_TOO_SHORT = "This entry is too short."
MSG_TOO_LONG = "This entry is too long."
MSG_BAD_CHARS = "This entry contains characters that are not allowed."
MSG_PATTERN = "This entry is not in the expected format."
MSG_DIGITS = "Please enter digits only."
MSG_PHONE = "Please enter an 11-digit mobile number."
MSG_PLATE = "Please enter a valid plate number, for example 鲁A12345 or 鲁AD12345."
MSG_DATE = "Please enter a date as YYYY-MM-DD."
MSG_DATE_EARLY = "This date is too early."
MSG_DATE_LATE = "This date is too late."
MSG_CHOICE = "Please choose one of the options."
MSG_NUMBER = "Please enter a number."
MSG_NUMBER_RANGE = "This number is outside the allowed range."
MSG_ID_NUMBER = "Please enter a valid 18-character ID number."


def id_number_valid(number: str) -> bool:
    """True when ``number`` is 17 digits plus the right GB 11643 check character."""
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != number[17]:
        return False
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return True


def resolve_date(spec: str, today: dt.date) -> dt.date:
    """A bound from the catalog: 'YYYY-MM-DD', 'today', or 'today±N{d,m,y}'."""
    m = _RELATIVE_DATE_RE.match(spec)
    if not m:
        return dt.date.fromisoformat(spec)
    if not m.group(1):
        return today
    n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
    unit = m.group(3)
    if unit == "d":
        return today + dt.timedelta(days=n)
    months = n * (12 if unit == "y" else 1)
    y, mo = divmod(today.month - 1 + months, 12)
    year, month = today.year + y, mo + 1
    # clamp 29-31 to the last day of the target month
    for day in (today.day, 30, 29, 28):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    raise ValueError(spec)


def _clean(value: Any) -> str:
    """Text a resident typed, normalised: full-width to half-width, trimmed."""
    if value is None:
        return ""
    if not isinstance(value, (str, int, float, Decimal)) or isinstance(value, bool):
        return "\x00"  # a FieldError in normalise: not something a form can send
    return unicodedata.normalize("NFKC", str(value)).strip()


def normalise(spec: "FieldSpec", value: Any, today: dt.date) -> str:
    """``value`` typed into ``spec`` in its canonical form ('' for an empty optional field). Raises FieldError."""
    text = _clean(value)
    if text == "":
        if spec.required:
            raise FieldError(spec.name, "required", message_en=MSG_REQUIRED)
        return ""
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise FieldError(spec.name, "control characters", message_en=MSG_BAD_CHARS)
    text = _CHECKS[spec.type](spec, text, today)
    if spec.min_len is not None and len(text) < spec.min_len:
        raise FieldError(spec.name, f"shorter than {spec.min_len}", message_en=MSG_TOO_SHORT)
    if spec.max_len is not None and len(text) > spec.max_len:
        raise FieldError(spec.name, f"longer than {spec.max_len}", message_en=MSG_TOO_LONG)
    if spec.pattern and not re.fullmatch(spec.pattern, text):
        raise FieldError(spec.name, "pattern mismatch", message_en=MSG_PATTERN)
    return text


def _check_text(spec: "FieldSpec", text: str, today: dt.date) -> str:
    text = re.sub(r"\s+", " ", text)
    return text.replace(" ", "").upper() if spec.upper else text


def _check_lookup(spec: "FieldSpec", text: str, today: dt.date) -> str:
    if len(text) > 64:
        raise FieldError(spec.name, "lookup value too long", message_en=MSG_CHOICE)
    return text


def _check_digits(spec: "FieldSpec", text: str, today: dt.date) -> str:
    text = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"[0-9]+", text):
        raise FieldError(spec.name, "not digits", message_en=MSG_DIGITS)
    return text


def _check_phone(spec: "FieldSpec", text: str, today: dt.date) -> str:
    text = re.sub(r"[\s()-]", "", text)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    if not PHONE_RE.fullmatch(text):
        raise FieldError(spec.name, "not a mainland mobile number", message_en=MSG_PHONE)
    return text


def _check_plate(spec: "FieldSpec", text: str, today: dt.date) -> str:
    text = re.sub(r"[\s·.\-]", "", text).upper()
    if not PLATE_RE.fullmatch(text):
        raise FieldError(spec.name, "not a plate number", message_en=MSG_PLATE)
    return text


def _check_id_number(spec: "FieldSpec", text: str, today: dt.date) -> str:
    text = text.replace(" ", "").upper()
    if not id_number_valid(text):
        raise FieldError(spec.name, "not a valid ID number", message_en=MSG_ID_NUMBER)
    return text


def _check_date(spec: "FieldSpec", text: str, today: dt.date) -> str:
    m = re.fullmatch(r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?|([0-9]{4})([0-9]{2})([0-9]{2})", text)
    if not m:
        raise FieldError(spec.name, "not a date", message_en=MSG_DATE)
    parts = [int(p) for p in (m.groups()[:3] if m.group(1) else m.groups()[3:])]
    try:
        day = dt.date(*parts)
    except ValueError:
        raise FieldError(spec.name, "no such date", message_en=MSG_DATE) from None
    if spec.min_date and day < resolve_date(spec.min_date, today):
        raise FieldError(spec.name, "before the earliest allowed date", message_en=MSG_DATE_EARLY)
    if spec.max_date and day > resolve_date(spec.max_date, today):
        raise FieldError(spec.name, "after the latest allowed date", message_en=MSG_DATE_LATE)
    return day.isoformat()


def _check_choice(spec: "FieldSpec", text: str, today: dt.date) -> str:
    if text not in spec.choice_values():
        raise FieldError(spec.name, "not one of the choices", message_en=MSG_CHOICE)
    return text


def _check_number(spec: "FieldSpec", text: str, today: dt.date) -> str:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise FieldError(spec.name, "not a number", message_en=MSG_NUMBER) from None
    # an exponent like 9e999999999 would print as a billion digits: forms never need that
    if not number.is_finite() or abs(number.adjusted()) > 15 or len(text) > 32:
        raise FieldError(spec.name, "not a finite number of sensible size", message_en=MSG_NUMBER)
    if (spec.min_value is not None and number < Decimal(str(spec.min_value))) or (
            spec.max_value is not None and number > Decimal(str(spec.max_value))):
        raise FieldError(spec.name, "out of range", message_en=MSG_NUMBER_RANGE)
    return format(number.normalize(), "f")


# One checker per field type; each returns the normalised text or raises FieldError.
_CHECKS: dict[str, Callable[["FieldSpec", str, dt.date], str]] = {
    "text": _check_text,
    "lookup": _check_lookup,
    "digits": _check_digits,
    "phone": _check_phone,
    "plate": _check_plate,
    "id_number": _check_id_number,
    "date": _check_date,
    "choice": _check_choice,
    "number": _check_number,
}
