"""Read ESC/POS bytes back into what a printer would put on paper: text lines, images, QR codes, cuts.

The inverse of :mod:`print_templates.receipts`: the tests, the demo and the benchmarks use it
to check what crossed the wire, and :func:`preview` draws the paper with the receipt fonts
and QR. It reads the token stream of :mod:`kiosk.hardware.escpos_stream`. Outside bytes are
never trusted: any input decodes without raising, and what could not be understood is
listed in ``problems``.

Run alone on saved jobs (e.g. from the virtual printer's ``--save``):
``python -m print_templates.escpos_decode JOB.bin [--png DIR]``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.hardware.escpos_stream import tokenize


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


def main(argv: list[str] | None = None) -> int:
    """Print what each saved job decodes to; with ``--png DIR`` also write a picture of its paper."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("jobs", nargs="+", metavar="JOB", help="a file of ESC/POS bytes")
    p.add_argument("--png", metavar="DIR", help="also write JOB's picture here as a PNG")
    args = p.parse_args(argv)
    for job in map(Path, args.jobs):
        receipt = decode(job.read_bytes())
        print(f"--- {job} ({len(receipt.lines)} lines, {len(receipt.qr_codes)} QR, {receipt.cuts} cuts)")
        print(receipt.text)
        for problem in receipt.problems:
            print(f"(not understood: {problem})")
        if args.png:
            out = Path(args.png) / f"{job.stem}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            preview(receipt).save(out)
            print(f"(picture: {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
