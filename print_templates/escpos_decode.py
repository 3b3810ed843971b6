"""Decode ESC/POS bytes into what a printer would put on paper: text lines, images, QR codes, cuts.

Used by the virtual network printer, the tests and the demo to check what crossed the wire.
The tokenizer knows the length of every command the kiosk sends and of the common others,
so it can also run incrementally on a stream (``final=False`` stops before an incomplete
command). Outside bytes are never trusted: any input decodes without raising, and what could
not be understood is listed in ``problems``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10


@dataclass(frozen=True)
class Token:
    """One unit of the stream: ``kind`` is text, lf, cmd, raster, qr_store, qr_print or junk."""

    kind: str
    start: int
    end: int
    name: str = ""  # command mnemonic, e.g. "ESC @", "FS &", "DLE EOT"
    args: bytes = b""
    data: bytes = b""


class _Incomplete(Exception):
    pass


# ESC x -> number of fixed parameter bytes
_ESC_FIXED = {
    b"@": 0, b"a": 1, b"E": 1, b"!": 1, b"-": 1, b"d": 1, b"J": 1, b"2": 0, b"3": 1, b"M": 1,
    b"t": 1, b"R": 1, b"G": 1, b"{": 1, b"V": 1, b"p": 3, b"$": 2, b"\\": 2, b"i": 0, b"m": 0,
    b" ": 1, b"%": 1, b"=": 1, b"r": 1, b"U": 1, b"L": 0, b"S": 0, b"T": 1, b"c": 2, b"e": 1,
    b"K": 1, b"<": 0, b"?": 1, b"W": 8,
}
# GS x -> fixed parameter bytes
_GS_FIXED = {
    b"!": 1, b"B": 1, b"H": 1, b"h": 1, b"w": 1, b"L": 2, b"W": 2, b"f": 1, b"a": 1, b"r": 1,
    b"I": 1, b"b": 1, b"P": 2, b"/": 1, b"E": 1, b"$": 2, b"\\": 2, b"^": 3, b":": 0, b"T": 1,
    b"g": 3, b"z": 1, b"Q": 0,
}
_FS_FIXED = {b"&": 0, b".": 0, b"!": 1, b"-": 1, b"C": 1, b"W": 1, b"S": 2, b"p": 2, b"q": 1}


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise _Incomplete


def _command(data: bytes, i: int) -> Token:
    """The command starting at ``data[i]`` (an ESC, GS, FS or DLE byte). Raises _Incomplete."""
    lead = data[i]
    _need(data, i + 2)
    op = data[i + 1:i + 2]
    prefix = {ESC: "ESC", GS: "GS", FS: "FS", DLE: "DLE"}[lead]
    name = f"{prefix} {op.decode('latin-1')}"
    if lead == DLE:
        if op == b"\x04":  # DLE EOT n (n = 7, 8 take one more byte)
            _need(data, i + 3)
            extra = 1 if data[i + 2] in (7, 8) else 0
            _need(data, i + 3 + extra)
            return Token("cmd", i, i + 3 + extra, "DLE EOT", data[i + 2:i + 3 + extra])
        if op == b"\x05":  # DLE ENQ n
            _need(data, i + 3)
            return Token("cmd", i, i + 3, "DLE ENQ", data[i + 2:i + 3])
        if op == b"\x14":  # DLE DC4 fn a b
            _need(data, i + 5)
            return Token("cmd", i, i + 5, "DLE DC4", data[i + 2:i + 5])
        return Token("junk", i, i + 1, "DLE", data[i:i + 1])
    if lead == ESC:
        if op == b"*":  # ESC * m nL nH d1..dk (bit image)
            _need(data, i + 5)
            m, n = data[i + 2], data[i + 3] | data[i + 4] << 8
            k = n * (3 if m in (32, 33) else 1)
            _need(data, i + 5 + k)
            return Token("cmd", i, i + 5 + k, name, data[i + 2:i + 5], data[i + 5:i + 5 + k])
        if op == b"D":  # ESC D n1..nk NUL (tab positions)
            end = data.find(b"\x00", i + 2)
            if end < 0:
                raise _Incomplete
            return Token("cmd", i, end + 1, name, data[i + 2:end])
        fixed = _ESC_FIXED.get(op)
    elif lead == GS:
        if op == b"V":  # GS V m [n]
            _need(data, i + 3)
            m = data[i + 2]
            extra = 1 if m in (65, 66, 97, 98, 103, 104) else 0
            _need(data, i + 3 + extra)
            return Token("cmd", i, i + 3 + extra, "GS V", data[i + 2:i + 3 + extra])
        if op == b"(":  # GS ( fn pL pH data
            _need(data, i + 5)
            fn, n = data[i + 2:i + 3], data[i + 3] | data[i + 4] << 8
            _need(data, i + 5 + n)
            body = data[i + 5:i + 5 + n]
            if fn == b"k" and len(body) >= 3 and body[0] == 49 and body[1] == 80:
                return Token("qr_store", i, i + 5 + n, "GS ( k", body[:3], body[3:])
            if fn == b"k" and len(body) >= 3 and body[0] == 49 and body[1] == 81:
                return Token("qr_print", i, i + 5 + n, "GS ( k", body)
            return Token("cmd", i, i + 5 + n, f"GS ( {fn.decode('latin-1')}", body)
        if op == b"8":  # GS 8 L p1..p4 data
            _need(data, i + 7)
            n = int.from_bytes(data[i + 3:i + 7], "little")
            _need(data, i + 7 + n)
            return Token("cmd", i, i + 7 + n, "GS 8 L", data[i + 7:i + 7 + n])
        if op == b"v":  # GS v 0 m xL xH yL yH data
            _need(data, i + 8)
            xb = data[i + 4] | data[i + 5] << 8
            y = data[i + 6] | data[i + 7] << 8
            _need(data, i + 8 + xb * y)
            return Token("raster", i, i + 8 + xb * y, "GS v 0", data[i + 2:i + 8],
                         data[i + 8:i + 8 + xb * y])
        if op == b"k":  # GS k m ... (barcode)
            _need(data, i + 3)
            m = data[i + 2]
            if m <= 6:
                end = data.find(b"\x00", i + 3)
                if end < 0:
                    raise _Incomplete
                return Token("cmd", i, end + 1, name, data[i + 2:i + 3], data[i + 3:end])
            _need(data, i + 4)
            n = data[i + 3]
            _need(data, i + 4 + n)
            return Token("cmd", i, i + 4 + n, name, data[i + 2:i + 4], data[i + 4:i + 4 + n])
        if op == b"*":  # GS * x y d (downloaded bit image)
            _need(data, i + 4)
            k = data[i + 2] * data[i + 3] * 8
            _need(data, i + 4 + k)
            return Token("cmd", i, i + 4 + k, name, data[i + 2:i + 4], data[i + 4:i + 4 + k])
        fixed = _GS_FIXED.get(op)
    else:
        if op == b"(":  # FS ( fn pL pH data
            _need(data, i + 5)
            n = data[i + 3] | data[i + 4] << 8
            _need(data, i + 5 + n)
            return Token("cmd", i, i + 5 + n, f"FS ( {data[i + 2:i + 3].decode('latin-1')}",
                         data[i + 5:i + 5 + n])
        fixed = _FS_FIXED.get(op)
    if fixed is None:
        return Token("junk", i, i + 2, name, data[i:i + 2])
    _need(data, i + 2 + fixed)
    return Token("cmd", i, i + 2 + fixed, name, data[i + 2:i + 2 + fixed])


def tokenize(data: bytes, *, final: bool = True) -> Iterator[Token]:
    """Split ESC/POS bytes into tokens. With ``final=False`` stop before an incomplete command."""
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b in (ESC, GS, FS, DLE):
            try:
                tok = _command(data, i)
            except _Incomplete:
                if not final:
                    return
                yield Token("junk", i, n, "truncated", data[i:])
                return
            yield tok
            i = tok.end
        elif b == 0x0A:
            yield Token("lf", i, i + 1)
            i += 1
        elif b < 0x20 or b == 0x7F:
            i += 1  # CR, HT, NUL, CAN...: nothing printable
        else:
            j = i
            while j < n and data[j] >= 0x20 and data[j] != 0x7F:
                j += 1
            yield Token("text", i, j, data=data[i:j])
            i = j


@dataclass(frozen=True)
class DecodedImage:
    """A raster image as sent: ``rows`` of packed bits, MSB first, 1 = printed dot."""

    width_bytes: int
    rows: tuple[bytes, ...]

    @property
    def width(self) -> int:
        """Width in dots."""
        return self.width_bytes * 8

    @property
    def height(self) -> int:
        """Height in dots."""
        return len(self.rows)

    def dot(self, x: int, y: int) -> bool:
        """True when the dot at (x, y) is printed."""
        return bool(self.rows[y][x // 8] & (0x80 >> (x % 8)))

    def to_image(self):  # -> PIL.Image.Image
        """The image as a 1-bit Pillow image (black = printed)."""
        from PIL import Image

        raw = b"".join(bytes(~v & 0xFF for v in row) for row in self.rows)
        return Image.frombytes("1", (self.width, max(1, self.height)), raw or b"\xff" * self.width_bytes)


@dataclass(frozen=True)
class DecodedReceipt:
    """What the bytes would print, in order, plus what a test wants to count."""

    lines: tuple[str, ...]
    images: tuple[DecodedImage, ...]
    qr_codes: tuple[str, ...]
    cuts: int
    status_queries: tuple[int, ...]
    chinese_mode_used: bool
    elements: tuple[tuple[str, object], ...] = field(default=())
    problems: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """All text lines joined with newlines."""
        return "\n".join(self.lines)


def decode(data: bytes, *, codepage: str = "cp437") -> DecodedReceipt:
    """Decode ESC/POS bytes. Never raises; text outside FS & mode decodes with ``codepage``."""
    lines: list[str] = []
    images: list[DecodedImage] = []
    qr_codes: list[str] = []
    elements: list[tuple[str, object]] = []
    problems: list[str] = []
    queries: list[int] = []
    cuts = 0
    kanji = False
    chinese_used = False
    current = ""
    stored_qr = b""
    last_kind = ""

    def end_line() -> None:
        nonlocal current
        lines.append(current)
        elements.append(("text", current))
        current = ""

    for tok in tokenize(bytes(data)):
        if tok.kind == "text":
            if kanji:
                current += tok.data.decode("gb18030", "replace")
                chinese_used = chinese_used or any(b >= 0x80 for b in tok.data)
            else:
                current += tok.data.decode(codepage, "replace")
        elif tok.kind == "lf":
            end_line()
        elif tok.kind == "raster":
            xb = tok.args[2] | tok.args[3] << 8
            rows = tuple(tok.data[r * xb:(r + 1) * xb] for r in range(len(tok.data) // xb)) if xb else ()
            if last_kind == "raster" and images and images[-1].width_bytes == xb:
                merged = DecodedImage(xb, images[-1].rows + rows)  # one image sent in bands
                images[-1] = merged
                elements[-1] = ("image", merged)
            else:
                images.append(DecodedImage(xb, rows))
                elements.append(("image", images[-1]))
        elif tok.kind == "qr_store":
            stored_qr = tok.data
        elif tok.kind == "qr_print":
            text = stored_qr.decode("utf-8", "replace")
            qr_codes.append(text)
            elements.append(("qr", text))
        elif tok.kind == "cmd":
            if tok.name == "FS &":
                kanji = True
            elif tok.name == "FS .":
                kanji = False
            elif tok.name == "ESC @":
                kanji = False
            elif tok.name == "GS V":
                if current:
                    end_line()
                cuts += 1
                elements.append(("cut", None))
            elif tok.name == "DLE EOT":
                queries.append(tok.args[0])
            elif tok.name == "ESC d" and tok.args:
                if current:
                    end_line()
        else:
            problems.append(f"{tok.name or 'junk'} at byte {tok.start}")
        last_kind = tok.kind
    if current:
        end_line()
    return DecodedReceipt(tuple(lines), tuple(images), tuple(qr_codes), cuts, tuple(queries),
                          chinese_used, tuple(elements), tuple(problems))


def preview(receipt: DecodedReceipt, *, width_dots: int = 576):  # -> PIL.Image.Image
    """A picture of the paper: text lines, raster images, QR codes and cut marks, top to bottom."""
    from PIL import Image, ImageDraw

    from print_templates.fonts import pil_font
    from print_templates.qr import qr_image

    font = pil_font(22)
    blocks: list[Image.Image] = []
    for kind, value in receipt.elements:
        if kind == "text":
            img = Image.new("1", (width_dots, 28), 1)
            ImageDraw.Draw(img).text((0, 2), str(value), font=font, fill=0)
        elif kind == "image":
            assert isinstance(value, DecodedImage)
            img = value.to_image()
        elif kind == "qr":
            img = qr_image(str(value), module_px=4)
        else:  # cut
            img = Image.new("1", (width_dots, 16), 1)
            draw = ImageDraw.Draw(img)
            for x in range(0, width_dots, 12):
                draw.line((x, 8, x + 6, 8), fill=0)
        blocks.append(img)
    height = sum(b.height for b in blocks) or 1
    paper = Image.new("1", (width_dots, height), 1)
    y = 0
    for block in blocks:
        x = max(0, (width_dots - block.width) // 2) if block.width < width_dots else 0
        paper.paste(block, (x, y))
        y += block.height
    return paper
