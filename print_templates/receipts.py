"""Receipts: ESC/POS bytes for the thermal printer, per printer profile.

Chinese text is where stock ESC/POS libraries go wrong: python-escpos encodes Han as GB18030
but never sends FS & (the command that switches the printer into its Chinese character
mode), and full-width punctuation on a line without a Han character comes out as '?'.
Here every line holding non-ASCII text is sent either

- ``fs_and``: wrapped in FS & ... FS . and encoded GB18030 (two-byte range only, which is
  what printer Chinese fonts hold); a line with a character outside it is rasterised, or
- ``raster``: drawn with the WenQuanYi font and sent as a GS v 0 raster image, for printers
  without a Chinese font.

The QR is sent natively (GS ( k) or as a raster image, per profile.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Iterable, Mapping, Sequence

from kiosk import localtime
from kiosk.errors import KioskError
from kiosk.hardware.receipt import PaperProfile, paper_profile
from print_templates.qr import qr_image, qr_text

ESC, GS, FS, DLE, LF = b"\x1b", b"\x1d", b"\x1c", b"\x10", b"\n"
INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."
CUT = GS + b"VA\x03"  # feed 3 lines, then full cut

KINDS = ("transaction", "appointment", "payment", "test")


class ReceiptInvalid(KioskError):
    """A receipt was asked for with an unknown kind or profile."""

    code = "receipt_invalid"
    message_en = "The receipt could not be prepared for printing. Please ask the staff for help."


def get_profile(spec: "str | PaperProfile", *, chinese_mode: str | None = None,
                qr_mode: str | None = None) -> PaperProfile:
    """The paper profile to render for (:func:`kiosk.hardware.receipt.paper_profile`). Raises ReceiptInvalid."""
    try:
        return paper_profile(spec, chinese_mode=chinese_mode, qr_mode=qr_mode)
    except ValueError as exc:
        raise ReceiptInvalid(str(exc)) from None


def char_columns(ch: str) -> int:
    """Printed width of one character in Font A columns (2 for Han and full-width forms)."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_columns(text: str) -> int:
    """Printed width of ``text`` in Font A columns."""
    return sum(char_columns(c) for c in text)


def wrap(text: str, width: int, measure: Callable[[str], int] = text_columns) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` (by ``measure``), keeping ASCII words whole."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        tokens = _tokens(para)
        for tok in tokens:
            if measure(line + tok) <= width:
                line += tok
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = tok.lstrip()
            while measure(line) > width:  # one token wider than a line: break it by character
                cut = len(line)
                while cut > 1 and measure(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """ASCII words stay together; spaces and every other character stand alone."""
    return re.findall(r"[!-~]+|.", text, flags=re.S)


def _gb_two_byte(ch: str) -> bool:
    """True when a printer's GB2312/GBK font can hold ``ch`` (GB18030 one- or two-byte range)."""
    try:
        return len(ch.encode("gb18030")) <= 2
    except UnicodeEncodeError:
        return False


_INVERT = bytes(255 - i for i in range(256))


def raster_bytes(image: Any) -> bytes:
    """A Pillow image as GS v 0 raster commands (bands of at most 128 rows; black = dots)."""
    from PIL import Image

    img = image.convert("1")
    width, height = img.size
    row_bytes = (width + 7) // 8
    if width % 8:  # pad with white so the padding bits print nothing
        padded = Image.new("1", (row_bytes * 8, height), 1)
        padded.paste(img, (0, 0))
        img = padded
    # Pillow packs mode "1" MSB first with 1 = white; ESC/POS wants 1 = printed dot
    packed = img.tobytes().translate(_INVERT)
    out = bytearray()
    for top in range(0, height, 128):
        band = min(128, height - top)
        out += GS + b"v0\x00" + bytes((row_bytes & 0xFF, row_bytes >> 8, band & 0xFF, band >> 8))
        out += packed[top * row_bytes:(top + band) * row_bytes]
    return bytes(out)


class EscposEncoder:
    """Builds one receipt's ESC/POS bytes for a profile; text is Unicode, bytes come out right."""

    def __init__(self, profile: "str | PaperProfile" = "80mm") -> None:
        self.profile = get_profile(profile)
        self._out = bytearray()
        self._align = "left"
        self._scale = 1

    def bytes(self) -> bytes:
        """Everything encoded so far."""
        return bytes(self._out)

    def init(self) -> "EscposEncoder":
        """ESC @: reset the printer (also leaves Chinese mode)."""
        self._out += INIT
        self._align, self._scale = "left", 1
        return self

    def align(self, where: str) -> "EscposEncoder":
        """ESC a: left, center or right."""
        self._align = where
        self._out += ESC + b"a" + bytes((("left", "center", "right").index(where),))
        return self

    def bold(self, on: bool = True) -> "EscposEncoder":
        """ESC E: emphasised text."""
        self._out += ESC + b"E" + (b"\x01" if on else b"\x00")
        return self

    def scale(self, factor: int) -> "EscposEncoder":
        """GS !: character size, 1 (normal) or 2 (double width and height)."""
        self._scale = factor
        n = (factor - 1) * 0x11
        self._out += GS + b"!" + bytes((n,))
        return self

    def text(self, text: str) -> "EscposEncoder":
        """Print ``text``, wrapped to the paper width, each line as text or raster per profile."""
        columns = self.profile.columns // self._scale
        if self.profile.chinese_mode == "raster" and not text.isascii():
            for line in wrap(text, self.profile.width_dots, self._pixel_width):
                self._raster_line(line)
            return self
        for line in wrap(text, columns):
            self._line(line)
        return self

    def _line(self, line: str) -> None:
        if line.isascii():
            self._out += line.encode("ascii", "replace") + LF
        elif all(_gb_two_byte(c) for c in line):
            self._out += CHINESE_ON + line.encode("gb18030") + CHINESE_OFF + LF
        else:
            # a character beyond the printer's GBK font (rare name characters, symbols)
            self._raster_line(line)

    def _pixel_width(self, text: str) -> int:
        from print_templates.fonts import pil_font

        font = pil_font(self.profile.text_px * self._scale)
        return int(font.getlength(text))

    def _raster_line(self, line: str) -> None:
        from PIL import Image, ImageDraw

        from print_templates.fonts import pil_font

        px = self.profile.text_px * self._scale
        font = pil_font(px)
        width = self.profile.width_dots
        img = Image.new("L", (width, px + 4), 255)
        text_w = int(font.getlength(line))
        x = {"left": 0, "center": (width - text_w) // 2, "right": width - text_w}[self._align]
        ImageDraw.Draw(img).text((max(0, x), 1), line, font=font, fill=0)
        # the raster itself spans the whole width, so the printer's alignment must not move it
        self._out += ESC + b"a\x00"
        self._out += raster_bytes(img.point(lambda v: 0 if v < 140 else 255, mode="1"))
        self._out += ESC + b"a" + bytes((("left", "center", "right").index(self._align),))

    def rule(self, ch: str = "-") -> "EscposEncoder":
        """A full-width separator line."""
        self._out += (ch * self.profile.columns).encode("ascii") + LF
        return self

    def qr(self, text: str) -> "EscposEncoder":
        """A QR code of ``text`` (UTF-8), natively (GS ( k) or as a raster, per profile."""
        data = text.encode("utf-8")
        if self.profile.qr_mode == "raster":
            img = qr_image(text, module_px=self.profile.qr_module_dots)
            if img.size[0] > self.profile.width_dots:
                img = qr_image(text, module_px=max(1, self.profile.width_dots // img.size[0]))
            self._out += raster_bytes(img)
            return self
        store_len = len(data) + 3
        self._out += GS + b"(k\x04\x001A2\x00"  # model 2
        self._out += GS + b"(k\x03\x001C" + bytes((self.profile.qr_module_dots,))  # module size
        self._out += GS + b"(k\x03\x001E1"  # error correction M
        self._out += GS + b"(k" + bytes((store_len & 0xFF, store_len >> 8)) + b"1P0" + data
        self._out += GS + b"(k\x03\x001Q0"  # print the stored symbol
        return self

    def image(self, image: Any) -> "EscposEncoder":
        """A Pillow image as raster (black = printed dots)."""
        self._out += raster_bytes(image)
        return self

    def feed(self, lines: int = 1) -> "EscposEncoder":
        """ESC d: feed ``lines`` lines."""
        self._out += ESC + b"d" + bytes((lines,))
        return self

    def cut(self) -> "EscposEncoder":
        """GS V A: feed to the cutter and cut."""
        self._out += CUT
        return self


# --- the receipt kinds --------------------------------------------------------------------
TITLES = {
    "transaction": "业务办理凭条",
    "appointment": "预约凭条",
    "payment": "缴费凭证",
    "test": "自助终端打印测试",
}
HEADER = "济南公安 24小时智慧警局"
QR_CAPTIONS = {
    "transaction": "扫描二维码核验文件真伪",
    "appointment": "请凭本凭条及身份证按时办理",
    "payment": "扫描二维码查询缴费结果",
    "test": "打印测试二维码",
}


def _kv(enc: EscposEncoder, label: str, value: Any, *, issued: bool = False) -> None:
    """One "label：value" line. ``issued``: a number the kiosk or the backend issued (reference,
    terminal id, time), printed whole; anything else goes through the masker."""
    from kiosk.privacy import mask_text

    if value is None or value == "":
        return
    # receipts get left at the kiosk: ID and phone numbers never print in full; the numbers the
    # counter needs to find the case are not personal and must stay readable (a hex reference
    # shaped like a passport number, "B8375914", was masked)
    enc.text(f"{label}：{value if issued else mask_text(str(value))}")


def render_receipt(kind: str, data: Mapping[str, Any], *, profile: "str | PaperProfile" = "80mm") -> bytes:
    """ESC/POS bytes of one receipt: ``kind`` in transaction, appointment, payment, test.

    ``data``: item_name_zh, item_name_en, terminal_id, time, reference, lines [[label, value]],
    optional kiosk_ref (the number given to a resident whose outcome was unknown), verification_code,
    qr_payload, signature (QR then carries payload|signature), header_zh, footer_zh. Raises ReceiptInvalid
    for an unknown kind or profile.
    """
    if kind not in KINDS:
        raise ReceiptInvalid(f"unknown receipt kind {kind!r}; known: {', '.join(KINDS)}")
    enc = EscposEncoder(profile)
    when = str(data.get("time") or localtime.stamp())
    terminal_id = str(data.get("terminal_id") or "")

    enc.init().align("center").bold().text(str(data.get("header_zh") or HEADER)).bold(False)
    enc.scale(2).text(TITLES[kind]).scale(1)
    if data.get("item_name_zh") and kind != "test":
        enc.bold().text(str(data["item_name_zh"])).bold(False)
    if data.get("item_name_en") and kind != "test":
        enc.text(str(data["item_name_en"]))
    enc.align("left").rule()

    if kind == "test":
        _kv(enc, "终端编号", terminal_id, issued=True)
        _kv(enc, "打印时间", when, issued=True)
        _kv(enc, "纸张规格", enc.profile.name)
        _kv(enc, "中文模式", enc.profile.chinese_mode)
        enc.text("全角标点：，。：；！？（）【】《》“”")
        enc.text("ASCII: 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        qr = str(data.get("qr_payload") or f"KIOSK-PRINT-TEST|{terminal_id}|{when}")
    else:
        _kv(enc, "办理事项", data.get("item_name_zh"), issued=True)
        _kv(enc, "办理时间", when, issued=True)
        _kv(enc, "终端编号", terminal_id, issued=True)
        _kv(enc, {"appointment": "预约编号", "payment": "缴费编号"}.get(kind, "业务编号"),
            data.get("reference"), issued=True)
        _kv(enc, "受理编号 Kiosk ref.", data.get("kiosk_ref"), issued=True)
        for pair in data.get("lines") or ():
            label, value = (list(pair) + ["", ""])[:2]
            _kv(enc, str(label), value)
        if data.get("verification_code"):
            enc.rule()
            enc.bold().text(f"核验码：{data['verification_code']}").bold(False)
        payload = data.get("qr_payload")
        qr = qr_text(str(payload), str(data.get("signature") or "")) if payload else ""

    if qr:
        enc.rule().align("center").qr(qr).text(QR_CAPTIONS[kind])
    enc.align("center").text(str(data.get("footer_zh") or "请妥善保管本凭条，如有疑问请咨询值班民警。"))
    enc.feed(2).cut()
    return enc.bytes()


def receipt_lines(items: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Normalise (label, value) pairs into the ``lines`` shape of receipt data."""
    return [[str(label), "" if value is None else str(value)] for label, value in items]
