"""The CJK font every printed page uses: WenQuanYi, loaded once per process.

WenQuanYi ships as TrueType collections (.ttc) with TrueType outlines, which reportlab can
subset and embed (``subfontIndex`` picks the face). Noto CJK is CFF-based and STSong-Light
is a non-embedded Adobe CID font, so neither gives a self-contained PDF.
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

from kiosk.errors import ConfigError

FONT_NAME = "WQY"

# Looked up in this order; $KIOSK_CJK_FONT wins so a site can point at its own copy.
_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
)

_lock = threading.Lock()


class FontMissing(ConfigError):
    """No usable CJK TrueType font is installed."""

    code = "font_missing"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, key="KIOSK_CJK_FONT", value=os.environ.get("KIOSK_CJK_FONT", ""))


def cjk_font_path() -> Path:
    """The WenQuanYi font file (fonts-wqy-microhei or -zenhei). Raises FontMissing."""
    override = os.environ.get("KIOSK_CJK_FONT")
    candidates = ((override,) if override else ()) + _CANDIDATES
    for candidate in candidates:
        p = Path(candidate)
        if p.is_file():
            return p
    raise FontMissing("no WenQuanYi font found; install fonts-wqy-microhei (tried: "
                      + ", ".join(candidates) + ")")


@functools.lru_cache(maxsize=1)
def register_reportlab_font() -> str:
    """Register the CJK font with reportlab once and return its name. Raises FontMissing."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _lock:
        path = cjk_font_path()
        # .ttc: face 0 is the regular face in both WenQuanYi collections.
        index = 0 if path.suffix.lower() == ".ttc" else None
        kwargs = {"subfontIndex": index} if index is not None else {}
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), **kwargs))
        return FONT_NAME


@functools.lru_cache(maxsize=8)
def pil_font(size_px: int):  # -> PIL.ImageFont.FreeTypeFont
    """The CJK font as a Pillow font of ``size_px`` pixels, for rasterised receipt text."""
    from PIL import ImageFont

    return ImageFont.truetype(str(cjk_font_path()), size_px, index=0)
