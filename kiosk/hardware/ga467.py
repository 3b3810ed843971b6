"""GA 467 SAM protocol of the second-generation resident ID card: frames, statuses, text blocks.

Frame (both directions): preamble ``AA AA AA 96 69``, 2-byte big-endian length counting
every byte after it (command/parameter or SW1 SW2 SW3, data, checksum), then the body, then
an XOR checksum over the length bytes and the body. The host sends CMD PARA; the SAM answers
SW1 SW2 SW3 where SW3 0x90 is success and 0x9F "card found".

The 256-byte text block is UCS-2 little-endian, space padded; three layouts share it,
told apart by the card type character at byte 248 (' ' resident, 'I' foreign permanent
resident, 'J' Hong Kong/Macau/Taiwan residence permit). Pure functions only: no I/O here.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from kiosk.errors import (CardAuthFailed, CardNoContent, CardReadFailed, DeviceError,
                          DeviceProtocolError, NoCard, SamError, SamNotReady, SamRejected,
                          UnknownCardType)
from kiosk.hardware.idcard import IdentityCard

PREAMBLE = b"\xAA\xAA\xAA\x96\x69"
MAX_LENGTH = 0x1000  # the longest real answer (base info with fingerprint) is ~0x90A
TEXT_SIZE = 256
PHOTO_SIZE = 1024
FINGERPRINT_SIZE = 1024
APPENDED_ADDRESS_SIZE = 70


class Command(bytes, enum.Enum):
    """Host commands: CMD and PARA bytes."""

    RESET_SAM = b"\x10\xFF"
    SAM_STATUS = b"\x11\xFF"
    SAM_ID = b"\x12\xFF"
    FIND_CARD = b"\x20\x01"
    SELECT_CARD = b"\x20\x02"
    READ_BASE_INFO = b"\x30\x01"
    READ_APPENDED_ADDRESS = b"\x30\x03"
    READ_BASE_INFO_FINGERPRINT = b"\x30\x10"


SW3_OK = 0x90
SW3_CARD_FOUND = 0x9F

# SW3 -> (error class, what the SAM means). Anything else is a SamError with its code.
SW3_ERRORS: dict[int, tuple[type[DeviceError], str]] = {
    0x10: (SamRejected, "checksum error in the received frame"),
    0x11: (SamRejected, "length error in the received frame"),
    0x21: (SamRejected, "command error"),
    0x23: (SamRejected, "operation not permitted"),
    0x24: (SamRejected, "unrecognised error"),
    0x31: (CardAuthFailed, "card failed to authenticate the SAM"),
    0x32: (CardAuthFailed, "SAM failed to authenticate the card"),
    0x33: (CardAuthFailed, "information verification failed"),
    0x37: (CardAuthFailed, "fingerprint verification failed"),
    0x40: (UnknownCardType, "unknown card type"),
    0x41: (CardReadFailed, "reading the card failed"),
    0x47: (CardReadFailed, "getting a random number failed"),
    0x60: (SamNotReady, "SAM self-check failed"),
    0x66: (SamNotReady, "SAM not authorised"),
    0x80: (NoCard, "find card failed"),
    0x81: (NoCard, "select card failed"),
    0x91: (CardNoContent, "no content for this item"),
}


def checksum(data: bytes) -> int:
    """XOR of every byte (the frame checksum is taken from the length through the data)."""
    value = 0
    for b in data:
        value ^= b
    return value


def encode_frame(body: bytes) -> bytes:
    """Wrap ``body`` (CMD PARA data, or SW1 SW2 SW3 data) in preamble, length and checksum."""
    length = (len(body) + 1).to_bytes(2, "big")
    return PREAMBLE + length + body + bytes([checksum(length + body)])


def encode_command(command: Command | bytes, data: bytes = b"") -> bytes:
    """A host command frame."""
    return encode_frame(bytes(command.value if isinstance(command, Command) else command) + data)


def encode_response(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """A SAM answer frame (used by the simulator and by tests)."""
    return encode_frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, repr=False)
class Response:
    """A decoded SAM answer. ``data`` may hold personal data: the repr shows its length only."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes

    def __repr__(self) -> str:
        return f"Response(sw={self.sw1:02X}{self.sw2:02X}{self.sw3:02X}, {len(self.data)} bytes)"

    @property
    def ok(self) -> bool:
        """True for success (0x90) and card found (0x9F)."""
        return self.sw3 in (SW3_OK, SW3_CARD_FOUND)


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, take whole frames out.

    Garbage before a preamble is skipped (resync); a partial frame waits for more bytes;
    a bad length or checksum raises DeviceProtocolError and drops that frame.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0  # bytes discarded while resyncing, for diagnostics

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    @property
    def pending(self) -> int:
        """Bytes held that do not form a frame yet."""
        return len(self._buf)

    def needed(self) -> int:
        """Lower bound of the bytes still missing for the frame being received."""
        start = self._buf.find(PREAMBLE)
        if start < 0 or len(self._buf) - start < 7:
            return 7 if start < 0 else 7 - (len(self._buf) - start)
        length = int.from_bytes(self._buf[start + 5:start + 7], "big")
        return max(0, 7 + length - (len(self._buf) - start))

    def next_body(self) -> bytes | None:
        """The body (without checksum) of the next whole frame, or None until one is complete.

        Raises DeviceProtocolError for an impossible length or a checksum mismatch.
        """
        start = self._buf.find(PREAMBLE)
        if start < 0:
            # keep a tail that may be the start of a preamble split across reads
            keep = 0
            for n in range(min(len(PREAMBLE) - 1, len(self._buf)), 0, -1):
                if self._buf.endswith(PREAMBLE[:n]):
                    keep = n
                    break
            self.skipped += len(self._buf) - keep
            del self._buf[:len(self._buf) - keep]
            return None
        if start:
            self.skipped += start
            del self._buf[:start]
        if len(self._buf) < 7:
            return None
        length = int.from_bytes(self._buf[5:7], "big")
        if length < 3 or length > MAX_LENGTH:
            del self._buf[:len(PREAMBLE)]  # drop this preamble; resync on the next one
            raise DeviceProtocolError(f"GA 467 frame length {length} out of range")
        if len(self._buf) < 7 + length:
            return None
        frame = bytes(self._buf[:7 + length])
        del self._buf[:7 + length]
        if checksum(frame[5:-1]) != frame[-1]:
            raise DeviceProtocolError("GA 467 frame checksum mismatch")
        return frame[7:-1]


def decode_frame(frame: bytes) -> bytes:
    """Decode exactly one whole frame to its body. Raises DeviceProtocolError."""
    decoder = FrameDecoder()
    decoder.feed(frame)
    body = decoder.next_body()
    if body is None:
        raise DeviceProtocolError("truncated GA 467 frame")
    return body


def parse_response(body: bytes) -> Response:
    """Split a SAM answer body into SW1 SW2 SW3 and data. Raises DeviceProtocolError."""
    if len(body) < 3:
        raise DeviceProtocolError("GA 467 answer shorter than its status words")
    return Response(body[0], body[1], body[2], bytes(body[3:]))


def status_error(sw3: int, device: str = "") -> DeviceError:
    """The typed error for a failure status byte."""
    cls, meaning = SW3_ERRORS.get(sw3, (SamError, "unknown SAM status"))
    detail = f"SAM status {sw3:#04x}: {meaning}"
    if issubclass(cls, SamError):
        return cls(detail, sw3=sw3, device=device)
    err = cls(detail, device=device)
    err.context["sw3"] = sw3
    return err


def check(response: Response, device: str = "") -> Response:
    """Return the response when it is a success, else raise its typed error."""
    if not response.ok:
        raise status_error(response.sw3, device)
    return response


# --- base information -------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class BaseInfo:
    """The three blocks of a base-info answer: text, photo (WLT), fingerprint (may be empty)."""

    text: bytes
    photo: bytes
    fingerprint: bytes = b""

    def __repr__(self) -> str:  # personal data: sizes only
        return f"BaseInfo(text {len(self.text)}, photo {len(self.photo)}, fingerprint {len(self.fingerprint)})"


def split_base_info(data: bytes, with_fingerprint: bool = False) -> BaseInfo:
    """Split a 30 01 / 30 10 answer: lengths first (2 bytes each, big-endian), then blocks.

    Raises DeviceProtocolError when the lengths do not add up.
    """
    heads = 3 if with_fingerprint else 2
    if len(data) < 2 * heads:
        raise DeviceProtocolError("base info shorter than its length fields")
    sizes = [int.from_bytes(data[2 * i:2 * i + 2], "big") for i in range(heads)]
    if 2 * heads + sum(sizes) != len(data):
        raise DeviceProtocolError("base info block lengths do not match the frame")
    if sizes[0] != TEXT_SIZE:
        raise DeviceProtocolError(f"text block of {sizes[0]} bytes, expected {TEXT_SIZE}")
    blocks, pos = [], 2 * heads
    for size in sizes:
        blocks.append(bytes(data[pos:pos + size]))
        pos += size
    return BaseInfo(*blocks)


# --- text block -------------------------------------------------------------------------
ETHNICITIES: dict[str, str] = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝",
    "08": "壮", "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白",
    "15": "土家", "16": "哈尼", "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤",
    "22": "畲", "23": "高山", "24": "拉祜", "25": "水", "26": "东乡", "27": "纳西", "28": "景颇",
    "29": "柯尔克孜", "30": "土", "31": "达斡尔", "32": "仫佬", "33": "羌", "34": "布朗",
    "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯", "39": "阿昌", "40": "普米",
    "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克", "46": "德昂",
    "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春",
    "53": "赫哲", "54": "门巴", "55": "珞巴", "56": "基诺",
    "97": "其他", "98": "外国血统中国籍人士",
}
ETHNICITY_CODES: dict[str, str] = {name: code for code, name in ETHNICITIES.items()}

SEX_CODES = {"0": "unknown", "1": "male", "2": "female", "9": "unknown"}
SEX_VALUES = {"male": "1", "female": "2", "unknown": "0"}
LONG_TERM = "长期"

# (field, characters) per layout; the widths are the GA 467 byte widths halved (UCS-2).
RESIDENT_LAYOUT: tuple[tuple[str, int], ...] = (
    ("name", 15), ("sex", 1), ("ethnicity", 2), ("birth_date", 8), ("address", 35),
    ("id_number", 18), ("issuer", 15), ("valid_from", 8), ("valid_to", 8), ("reserved", 18),
)
FOREIGN_LAYOUT: tuple[tuple[str, int], ...] = (
    ("name_en", 60), ("sex", 1), ("id_number", 15), ("nationality", 3), ("name", 15),
    ("valid_from", 8), ("valid_to", 8), ("birth_date", 8), ("card_version", 2),
    ("issuer_code", 4), ("card_type", 1), ("reserved", 3),
)
HKMT_LAYOUT: tuple[tuple[str, int], ...] = (
    ("name", 15), ("sex", 1), ("reserved1", 2), ("birth_date", 8), ("address", 35),
    ("id_number", 18), ("issuer", 15), ("valid_from", 8), ("valid_to", 8),
    ("pass_number", 9), ("issue_count", 2), ("reserved2", 3), ("card_type", 1),
    ("reserved3", 3),
)
CARD_TYPE_OFFSET = 124  # character index of the card type letter
CARD_TYPES = {" ": "resident", "I": "foreign_permanent", "J": "hkmt_residence"}
LAYOUTS = {"resident": RESIDENT_LAYOUT, "foreign_permanent": FOREIGN_LAYOUT,
           "hkmt_residence": HKMT_LAYOUT}

# Decodes the opaque WLT photo (licensed decoders are proprietary); None until one is plugged in.
PhotoDecoder = Callable[[bytes], bytes]
_photo_decoder: PhotoDecoder | None = None


def register_photo_decoder(decoder: PhotoDecoder | None) -> None:
    """Plug in a licensed WLT decoder (WLT bytes -> BMP/PNG bytes); None removes it."""
    global _photo_decoder
    _photo_decoder = decoder


def decode_photo(wlt: bytes) -> bytes | None:
    """The photo as an image when a decoder is registered, else None (the WLT stays opaque)."""
    return _photo_decoder(wlt) if _photo_decoder is not None else None


def _split_fields(text: str, layout: tuple[tuple[str, int], ...]) -> dict[str, str]:
    fields, pos = {}, 0
    for name, width in layout:
        fields[name] = text[pos:pos + width].rstrip(" \x00")
        pos += width
    return fields


def _date(value: str, field: str, allow_long_term: bool = False) -> str:
    """YYYYMMDD → YYYY-MM-DD; 长期 → long-term where the layout allows it."""
    if allow_long_term and value == LONG_TERM:
        return "long-term"
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        raise DeviceProtocolError(f"text block {field} is not a YYYYMMDD date")
    month, day = int(value[4:6]), int(value[6:])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise DeviceProtocolError(f"text block {field} is not a valid date")
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def card_type_of(text: bytes) -> str:
    """resident, foreign_permanent or hkmt_residence, from the card type character."""
    if len(text) != TEXT_SIZE:
        raise DeviceProtocolError(f"text block of {len(text)} bytes, expected {TEXT_SIZE}")
    letter = text[2 * CARD_TYPE_OFFSET:2 * CARD_TYPE_OFFSET + 2].decode("utf-16-le", "replace")
    if letter == "\x00":
        letter = " "
    try:
        return CARD_TYPES[letter]
    except KeyError:
        raise UnknownCardType(f"card type character {letter!r}", sw3=0x40) from None


def parse_text_block(text: bytes, photo: bytes = b"") -> IdentityCard:
    """Parse a 256-byte text block into an IdentityCard. Raises DeviceProtocolError, UnknownCardType."""
    card_type = card_type_of(text)
    try:
        decoded = text.decode("utf-16-le")
    except UnicodeDecodeError:
        raise DeviceProtocolError("text block is not UCS-2") from None
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in decoded) or len(decoded) != TEXT_SIZE // 2:
        raise DeviceProtocolError("text block is not UCS-2")
    f = _split_fields(decoded, LAYOUTS[card_type])
    if f["sex"] not in SEX_CODES:
        raise DeviceProtocolError("text block sex code unknown")
    sex = SEX_CODES[f["sex"]]
    birth = _date(f["birth_date"], "birth date")
    valid_from = _date(f["valid_from"], "valid-from")
    valid_to = _date(f["valid_to"], "valid-to", allow_long_term=True)
    if not f["name"] and not f.get("name_en"):
        raise DeviceProtocolError("text block has no name")
    if card_type == "foreign_permanent":
        if not f["id_number"].isascii() or len(f["id_number"]) != 15:
            raise DeviceProtocolError("foreign permanent resident number is not 15 characters")
        extra = {"name_en": f["name_en"], "nationality": f["nationality"],
                 "card_version": f["card_version"], "issuer_code": f["issuer_code"]}
        return IdentityCard(card_type, f["name"] or f["name_en"], f["id_number"], sex,
                            birth_date=birth, issuer=f["issuer_code"], valid_from=valid_from,
                            valid_to=valid_to, photo=photo, extra=extra)
    _check_id_number(f["id_number"])
    if card_type == "hkmt_residence":
        if not f["issue_count"].isdigit():
            raise DeviceProtocolError("residence permit issue count is not a number")
        extra = {"pass_number": f["pass_number"], "issue_count": str(int(f["issue_count"]))}
        return IdentityCard(card_type, f["name"], f["id_number"], sex, birth_date=birth,
                            address=f["address"], issuer=f["issuer"], valid_from=valid_from,
                            valid_to=valid_to, photo=photo, extra=extra)
    code = f["ethnicity"]
    if code not in ETHNICITIES:
        raise DeviceProtocolError("text block ethnicity code unknown")
    return IdentityCard(card_type, f["name"], f["id_number"], sex, ETHNICITIES[code], code,
                        birth, f["address"], f["issuer"], valid_from, valid_to, photo)


def parse_appended_address(data: bytes) -> str:
    """The 70-byte appended (new) address block. Raises DeviceProtocolError."""
    if len(data) != APPENDED_ADDRESS_SIZE:
        raise DeviceProtocolError("appended address block has the wrong size")
    try:
        return data.decode("utf-16-le").rstrip(" \x00")
    except UnicodeDecodeError:
        raise DeviceProtocolError("appended address is not UCS-2") from None


def _check_id_number(number: str) -> None:
    if not is_valid_id_number(number):
        raise DeviceProtocolError("ID number fails its GB 11643 check character")


def _pad(value: str, width: int) -> str:
    if len(value) > width:
        raise ValueError(f"{value!r} longer than {width} characters")
    return value + " " * (width - len(value))


def _card_date(value: str) -> str:
    return LONG_TERM if value == "long-term" else value.replace("-", "")


def encode_text_block(card: IdentityCard) -> bytes:
    """The 256-byte text block a real card of this type would hold (simulator and tests)."""
    values = {
        "name": card.name, "sex": SEX_VALUES.get(card.sex, "0"),
        "ethnicity": card.ethnicity_code, "birth_date": _card_date(card.birth_date),
        "address": card.address, "id_number": card.id_number, "issuer": card.issuer,
        "valid_from": _card_date(card.valid_from), "valid_to": _card_date(card.valid_to),
    }
    values.update(card.extra)
    if card.card_type == "foreign_permanent":
        values["issuer_code"] = card.extra.get("issuer_code", card.issuer)
        values["card_type"] = "I"
    elif card.card_type == "hkmt_residence":
        values["issue_count"] = card.extra.get("issue_count", "1").zfill(2)
        values["card_type"] = "J"
    elif card.card_type != "resident":
        raise ValueError(f"no GA 467 layout for {card.card_type}")
    text = "".join(_pad(values.get(name, ""), width) for name, width in LAYOUTS[card.card_type])
    return text.encode("utf-16-le")


# --- GB 11643 ---------------------------------------------------------------------------
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


def id_check_character(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character of the first 17 digits. Raises ValueError."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need 17 digits")
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def is_valid_id_number(number: str) -> bool:
    """True for an 18-character citizen number whose check character matches."""
    if len(number) != 18:
        return False
    try:
        return id_check_character(number[:17]) == number[17].upper()
    except ValueError:
        return False
