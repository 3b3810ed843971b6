"""Machine-readable zone: check digits, the BAC key seed input, and TD1/TD3 line parsing."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from kiosk import localtime
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


MSG_KEYED_NUMBER = "Type the document number as printed on the document: letters and digits."
MSG_KEYED_DATE = "Type the date as 8 digits: year, month, day (for example 19900521)."


def keyed_access_data(document_number: str, birth_date: str, expiry_date: str,
                      *, today: "datetime.date | None" = None) -> tuple[str, str, str]:
    """BAC access data as a resident types it on the touchscreen: (number, YYMMDD, YYMMDD).

    Dates are taken as YYYYMMDD (what residents read off the data page) or YYMMDD (what
    the MRZ holds), and must be real calendar dates; the birth date not in the future. An
    expired document is not refused here: the chip's own dates decide that, as for a scan.
    Raises FieldError naming the entry, with a message for the resident.
    """
    number = document_number.strip().upper().replace(" ", "")
    if not re.fullmatch(r"[0-9A-Z]{5,20}", number):
        raise FieldError("document_number", "document number must be 5-20 letters and digits",
                         message_en=MSG_KEYED_NUMBER)
    today = today or localtime.today()
    out = []
    for name, text in (("birth_date", birth_date), ("expiry_date", expiry_date)):
        text = text.strip().replace("-", "").replace(" ", "")
        if not re.fullmatch(r"\d{6}|\d{8}", text):
            raise FieldError(name, "dates are YYYYMMDD or YYMMDD", message_en=MSG_KEYED_DATE)
        if len(text) == 6:
            yy = int(text[:2])
            # MRZ dates carry no century: a birth date is in the past, an expiry within 50 years.
            century = (19 if 2000 + yy > today.year else 20) if name == "birth_date" else \
                (20 if 2000 + yy <= today.year + 50 else 19)
            text = f"{century}{text}"
        try:
            date = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise FieldError(name, "not a calendar date", message_en=MSG_KEYED_DATE) from None
        if name == "birth_date" and not (datetime.date(1900, 1, 1) <= date <= today):
            raise FieldError(name, "birth date outside 1900..today", message_en=MSG_KEYED_DATE)
        out.append(date.strftime("%y%m%d"))
    return number, out[0], out[1]


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
                # long document number: the rest and its check digit sit in optional data,
                # right at its start (9303-5 4.2.4); anything else is a misread, not a number
                rest, _, tail = optional1.partition("<")
                if len(rest) < 2:
                    raise DeviceProtocolError("MRZ: long document number without its overflow and check digit")
                number, nck = number + rest[:-1], rest[-1]
                optional1 = tail
            birth, bck, sex, expiry, eck = l2[0:6], l2[6], l2[7], l2[8:14], l2[14]
            composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
            checks = [(number, nck), (birth, bck), (expiry, eck), (composite, l2[29])]
            surname, given = _names(l3)
            return Mrz(l1[0:2].replace("<", ""), l1[2:5].replace("<", ""), surname, given,
                       number.rstrip("<"), l2[15:18].replace("<", ""), birth, _sex(sex), expiry,
                       (optional1 + l2[18:29]).strip("<"), all(check_digit(f) == c for f, c in checks))
    except (ValueError, IndexError) as exc:  # IndexError: a field shorter than its layout; never let it out
        raise DeviceProtocolError(f"MRZ: {exc}") from None
    raise DeviceProtocolError(f"MRZ of {len(raw)} characters is neither TD1 nor TD3")


def yymmdd_to_iso(value: str, *, future: bool = False, today_year: int | None = None) -> str:
    """YYMMDD → YYYY-MM-DD; birth dates pick the past century, expiry dates the window ±50 years."""
    if not _DATE_RE.match(value):
        return value
    year = today_year or localtime.today().year
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
