"""Machine-readable zone: check digits, the BAC key seed input, and TD1/TD3 line parsing."""
from __future__ import annotations

import re
from dataclasses import dataclass

from kiosk.errors import DeviceProtocolError, FieldError

_WEIGHTS = (7, 3, 1)


def _value(ch: str) -> int:
    if ch.isdigit():
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    if ch == "<":
        return 0
    raise ValueError(f"{ch!r} is not an MRZ character")


def check_digit(field: str) -> str:
    """ICAO 9303-3 check digit (weights 7, 3, 1; A=10 … Z=35; '<'=0). Raises ValueError."""
    return str(sum(_value(ch) * _WEIGHTS[i % 3] for i, ch in enumerate(field.upper())) % 10)


_DATE_RE = re.compile(r"^\d{6}$")


def normalise_document_number(number: str) -> str:
    """Upper-case, spaces dropped, padded with '<' to at least 9. Raises FieldError."""
    number = number.strip().upper().replace(" ", "")
    if not number or not re.fullmatch(r"[0-9A-Z<]+", number):
        raise FieldError("document_number", "document number must be letters and digits")
    return number.ljust(9, "<")


def bac_seed_input(document_number: str, birth_date: str, expiry_date: str) -> str:
    """MRZ_information for BAC: number + check, birth date + check, expiry + check (9303-11 §4.3).

    Numbers longer than 9 characters keep their full length here; the chip's MRZ holds the
    overflow in the optional data field. Raises FieldError.
    """
    number = normalise_document_number(document_number)
    for name, date in (("birth_date", birth_date), ("expiry_date", expiry_date)):
        if not _DATE_RE.match(date):
            raise FieldError(name, "dates are YYMMDD")
    return (number + check_digit(number) + birth_date + check_digit(birth_date)
            + expiry_date + check_digit(expiry_date))


@dataclass(frozen=True, repr=False)
class Mrz:
    """The fields of a TD1 or TD3 MRZ (dates stay YYMMDD as printed). Personal data: never log it."""

    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: str
    sex: str  # male, female, unknown
    expiry_date: str
    optional_data: str
    checks_ok: bool

    def __repr__(self) -> str:
        return f"Mrz({self.document_code}, {self.issuing_state}, checks_ok={self.checks_ok})"

    def access_data(self) -> tuple[str, str, str]:
        """(document number, birth date, expiry date) for BAC."""
        return self.document_number, self.birth_date, self.expiry_date


def _names(field: str) -> tuple[str, str]:
    surname, _, given = field.partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def _sex(ch: str) -> str:
    return {"M": "male", "F": "female"}.get(ch, "unknown")


def parse_mrz(text: str) -> Mrz:
    """Parse a TD3 (2×44) or TD1 (3×30) MRZ, as a scanner or DG1 gives it. Raises DeviceProtocolError."""
    raw = "".join(text.split()).upper()
    if not re.fullmatch(r"[0-9A-Z<]*", raw):
        raise DeviceProtocolError("MRZ holds characters outside 0-9 A-Z <")
    try:
        if len(raw) == 88:
            l1, l2 = raw[:44], raw[44:]
            number, nck = l2[0:9], l2[9]
            birth, bck, sex, expiry, eck = l2[13:19], l2[19], l2[20], l2[21:27], l2[27]
            optional, ock = l2[28:42], l2[42]
            composite = l2[0:10] + l2[13:20] + l2[21:43]
            checks = [(number, nck), (birth, bck), (expiry, eck), (composite, l2[43])]
            if optional.strip("<") or ock != "<":
                checks.append((optional, ock))
            surname, given = _names(l1[5:44])
            return Mrz(l1[0:2].replace("<", ""), l1[2:5].replace("<", ""), surname, given,
                       number.rstrip("<"), l2[10:13].replace("<", ""), birth, _sex(sex), expiry,
                       optional.rstrip("<"), all(check_digit(f) == c for f, c in checks))
        if len(raw) == 90:
            l1, l2, l3 = raw[:30], raw[30:60], raw[60:]
            number, nck, optional1 = l1[5:14], l1[14], l1[15:30]
            if nck == "<" and optional1.strip("<"):
                # long document number: the rest and its check digit sit in optional data
                rest, _, tail = optional1.partition("<")
                number, nck = number + rest[:-1], rest[-1]
                optional1 = tail
            birth, bck, sex, expiry, eck = l2[0:6], l2[6], l2[7], l2[8:14], l2[14]
            composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
            checks = [(number, nck), (birth, bck), (expiry, eck), (composite, l2[29])]
            surname, given = _names(l3)
            return Mrz(l1[0:2].replace("<", ""), l1[2:5].replace("<", ""), surname, given,
                       number.rstrip("<"), l2[15:18].replace("<", ""), birth, _sex(sex), expiry,
                       (optional1 + l2[18:29]).strip("<"), all(check_digit(f) == c for f, c in checks))
    except ValueError as exc:
        raise DeviceProtocolError(f"MRZ: {exc}") from None
    raise DeviceProtocolError(f"MRZ of {len(raw)} characters is neither TD1 nor TD3")


def yymmdd_to_iso(value: str, *, future: bool = False, today_year: int | None = None) -> str:
    """YYMMDD → YYYY-MM-DD; birth dates pick the past century, expiry dates the window ±50 years."""
    import datetime

    if not _DATE_RE.match(value):
        return value
    year = today_year or datetime.date.today().year
    yy = int(value[:2])
    century = year // 100 * 100
    full = century + yy
    if future:
        if full >= year + 50:
            full -= 100
        elif full < year - 50:
            full += 100
    elif full > year:
        full -= 100
    return f"{full:04d}-{value[2:4]}-{value[4:6]}"
