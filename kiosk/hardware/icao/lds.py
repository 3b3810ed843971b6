"""BER-TLV and the LDS files: EF.COM, DG1 (MRZ), DG2 (face), EF.SOD (security object).

Every parser takes outside bytes; anything malformed raises DeviceProtocolError.
"""
from __future__ import annotations

from dataclasses import dataclass

from kiosk.errors import DeviceProtocolError
from kiosk.hardware.icao.mrz import Mrz, parse_mrz

# file identifiers and the tags the LDS files start with
EF_COM, EF_SOD, DG1, DG2 = 0x011E, 0x011D, 0x0101, 0x0102
FILE_IDS = {"EF.COM": EF_COM, "DG1": DG1, "DG2": DG2, "EF.SOD": EF_SOD}
LDS1_AID = bytes.fromhex("A0000002471001")
DG_TAGS = {0x61: 1, 0x75: 2, 0x63: 3, 0x76: 4, 0x65: 5, 0x66: 6, 0x67: 7, 0x68: 8, 0x69: 9,
           0x6A: 10, 0x6B: 11, 0x6C: 12, 0x6D: 13, 0x6E: 14, 0x6F: 15, 0x70: 16}


@dataclass(frozen=True)
class Tlv:
    """One BER-TLV element; ``value`` is raw (parse children with ``children()``)."""

    tag: int
    value: bytes
    constructed: bool
    raw: bytes  # the whole element, tag and length included

    def children(self) -> list["Tlv"]:
        """The nested elements of a constructed element. Raises DeviceProtocolError."""
        return parse_tlvs(self.value)

    def find(self, tag: int) -> "Tlv":
        """The first child with ``tag``. Raises DeviceProtocolError when absent."""
        for child in self.children():
            if child.tag == tag:
                return child
        raise DeviceProtocolError(f"TLV {self.tag:X} has no {tag:X}")


def read_tlv(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """Parse one element at ``pos``; return it and the position after it. Raises DeviceProtocolError."""
    start = pos
    try:
        first = data[pos]
        tag = first
        pos += 1
        if first & 0x1F == 0x1F:  # multi-byte tag
            for _ in range(3):
                b = data[pos]
                tag = (tag << 8) | b
                pos += 1
                if not b & 0x80:
                    break
            else:
                raise DeviceProtocolError("BER tag longer than 4 bytes")
        lb = data[pos]
        pos += 1
        if lb < 0x80:
            length = lb
        elif lb in (0x81, 0x82, 0x83, 0x84):
            n = lb & 0x7F
            if pos + n > len(data):
                raise DeviceProtocolError("BER length runs past the data")
            length = int.from_bytes(data[pos:pos + n], "big")
            pos += n
        else:
            raise DeviceProtocolError(f"BER length byte {lb:#x} not allowed")
    except IndexError:
        raise DeviceProtocolError("BER element truncated") from None
    if pos + length > len(data):
        raise DeviceProtocolError("BER value runs past the data")
    return Tlv(tag, bytes(data[pos:pos + length]), bool(first & 0x20), bytes(data[start:pos + length])), pos + length


def parse_tlvs(data: bytes) -> list[Tlv]:
    """Every element in ``data`` in order. Raises DeviceProtocolError."""
    out, pos = [], 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF) and not data[pos:].strip(bytes([data[pos]])):
            break  # trailing filler some chips leave after the last element
        element, pos = read_tlv(data, pos)
        out.append(element)
    return out


def parse_one(data: bytes, tag: int) -> Tlv:
    """The single top-level element of an LDS file, checking its tag. Raises DeviceProtocolError."""
    element, _ = read_tlv(data)
    if element.tag != tag:
        raise DeviceProtocolError(f"expected tag {tag:X}, found {element.tag:X}")
    return element


def encode_length(n: int) -> bytes:
    """BER length octets."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one element."""
    return tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big") + encode_length(len(value)) + value


def total_length(header: bytes) -> int:
    """Length of a whole file from its first bytes (tag + length). Raises DeviceProtocolError."""
    try:
        pos = 1
        if header[0] & 0x1F == 0x1F:
            while header[pos] & 0x80:
                pos += 1
            pos += 1
        lb = header[pos]
        if lb < 0x80:
            return pos + 1 + lb
        n = lb & 0x7F
        if n == 0 or n > 4 or pos + 1 + n > len(header):
            raise DeviceProtocolError("file length field malformed")
        return pos + 1 + n + int.from_bytes(header[pos + 1:pos + 1 + n], "big")
    except IndexError:
        raise DeviceProtocolError("file header truncated") from None


# --- the files --------------------------------------------------------------------------
@dataclass(frozen=True)
class EfCom:
    """EF.COM: LDS and Unicode versions and the data groups present."""

    lds_version: str
    unicode_version: str
    data_groups: tuple[int, ...]


def parse_ef_com(data: bytes) -> EfCom:
    """Parse EF.COM (tag 60). Raises DeviceProtocolError."""
    com = parse_one(data, 0x60)
    values = {c.tag: c.value for c in com.children()}
    if 0x5C not in values:
        raise DeviceProtocolError("EF.COM lacks its tag list")
    groups = []
    for t in values[0x5C]:
        if t not in DG_TAGS:
            raise DeviceProtocolError(f"EF.COM lists unknown tag {t:X}")
        groups.append(DG_TAGS[t])
    try:
        return EfCom(values.get(0x5F01, b"").decode("ascii"), values.get(0x5F36, b"").decode("ascii"),
                     tuple(groups))
    except UnicodeDecodeError:
        raise DeviceProtocolError("EF.COM version is not ASCII") from None


def parse_dg1(data: bytes) -> Mrz:
    """Parse DG1 (tag 61 → 5F1F MRZ). Raises DeviceProtocolError."""
    mrz = parse_one(data, 0x61).find(0x5F1F).value
    try:
        text = mrz.decode("ascii")
    except UnicodeDecodeError:
        raise DeviceProtocolError("DG1 MRZ is not ASCII") from None
    return parse_mrz(text)


@dataclass(frozen=True, repr=False)
class FaceImage:
    """The first face image of DG2: its format and bytes."""

    format: str  # jpeg, jpeg2000, unknown
    image: bytes
    count: int

    def __repr__(self) -> str:  # a face is personal data: never in a log line
        return f"FaceImage({self.format}, {len(self.image)} bytes)"


def parse_dg2(data: bytes) -> FaceImage:
    """Parse DG2 (75 → 7F61 → 7F60 → 5F2E/7F2E, ISO 19794-5 record). Raises DeviceProtocolError."""
    group = parse_one(data, 0x75).find(0x7F61)
    children = group.children()
    count = next((int.from_bytes(c.value, "big") for c in children if c.tag == 0x02), 0)
    template = next((c for c in children if c.tag == 0x7F60), None)
    if template is None:
        raise DeviceProtocolError("DG2 has no biometric template")
    block = next((c for c in template.children() if c.tag in (0x5F2E, 0x7F2E)), None)
    if block is None:
        raise DeviceProtocolError("DG2 has no biometric data block")
    return FaceImage(*_face_from_19794(block.value), count=count)


_JPEG = b"\xFF\xD8\xFF"
_JP2 = (b"\x00\x00\x00\x0CjP  \r\n\x87\n", b"\xFF\x4F\xFF\x51")


def _face_from_19794(record: bytes) -> tuple[str, bytes]:
    if not record.startswith(b"FAC\x00"):
        raise DeviceProtocolError("DG2 record is not ISO 19794-5 (no FAC header)")
    # after the 14-byte header and the 20-byte facial information block come feature points
    # (8 bytes each) and the 12-byte image information block, then the image itself
    try:
        points = int.from_bytes(record[18:20], "big")
    except IndexError:
        raise DeviceProtocolError("DG2 record truncated") from None
    start = 14 + 20 + 8 * points + 12
    if start > len(record):
        raise DeviceProtocolError("DG2 record truncated")
    image = record[start:]
    if image.startswith(_JPEG):
        return "jpeg", image
    if image.startswith(_JP2):
        return "jpeg2000", image
    return "unknown", image


def parse_sod_wrapper(data: bytes) -> bytes:
    """EF.SOD (tag 77) → the DER of its CMS ContentInfo. Raises DeviceProtocolError."""
    return parse_one(data, 0x77).value


def face_record(image: bytes, width: int, height: int) -> bytes:
    """An ISO 19794-5 record around a JPEG (no feature points): the simulator's DG2 content."""
    header_len = 14 + 20 + 12 + len(image)
    header = b"FAC\x00" + b"010\x00" + header_len.to_bytes(4, "big") + (1).to_bytes(2, "big")
    facial = (20 + 12 + len(image)).to_bytes(4, "big") + (0).to_bytes(2, "big") + bytes(14)
    info = bytes([1, 0]) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes(6)
    return header + facial + info + image


def build_dg2(image: bytes, width: int, height: int) -> bytes:
    """DG2 holding one face image (simulator)."""
    bht = tlv(0xA1, tlv(0x80, b"\x01\x01") + tlv(0x87, b"\x01\x01") + tlv(0x88, b"\x00\x08"))
    template = tlv(0x7F60, bht + tlv(0x5F2E, face_record(image, width, height)))
    return tlv(0x75, tlv(0x7F61, tlv(0x02, b"\x01") + template))


def build_dg1(mrz: str) -> bytes:
    """DG1 around an MRZ string (simulator)."""
    return tlv(0x61, tlv(0x5F1F, mrz.encode("ascii")))


def build_ef_com(groups: tuple[int, ...]) -> bytes:
    """EF.COM for LDS 1.7, Unicode 4.0.0 (simulator)."""
    tags = bytes(next(t for t, g in DG_TAGS.items() if g == n) for n in groups)
    return tlv(0x60, tlv(0x5F01, b"0107") + tlv(0x5F36, b"040000") + tlv(0x5C, tags))
