"""The icon set the screens draw with: Font Awesome 4.7, as Debian's fonts-font-awesome installs it.

The font (SIL OFL 1.1) draws the icons; the package's stylesheet (MIT) names them, so a
catalog names an icon as the stylesheet does, without "fa-" ("file-text", "car"), and this
module turns the name into the font's character. Nothing is copied into the project.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from kiosk.errors import ConfigError

ICON_FONT = Path("/usr/share/fonts/truetype/font-awesome/fontawesome-webfont.ttf")
ICON_CSS = Path("/usr/share/fonts-font-awesome/css/font-awesome.css")
# ".fa-print:before {\n  content: "\f02f";\n}", several names sharing one block.
_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+:before,?\s*)+)\{\s*content:\s*"\\([0-9a-f]{4,5})";')
_NAME = re.compile(r"\.fa-([a-z0-9-]+):before")


@functools.lru_cache(maxsize=1)
def glyphs() -> dict[str, str]:
    """Every icon name of the installed set and its character. Raises ConfigError when the set is missing."""
    try:
        css = ICON_CSS.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError("the icon set is not installed (fonts-font-awesome)", value=str(ICON_CSS)) from None
    table = {}
    for names, code in _RULE.findall(css):
        for name in _NAME.findall(names):
            table[name] = chr(int(code, 16))
    return table


def icon_font() -> str:
    """The icon font's file. Raises ConfigError when it is missing."""
    if not ICON_FONT.is_file():
        raise ConfigError("the icon font is not installed (fonts-font-awesome)", value=str(ICON_FONT))
    return str(ICON_FONT)


def glyph(name: str) -> str:
    """The character that draws icon ``name``. Raises ConfigError for a name the set does not have."""
    try:
        return glyphs()[name]
    except KeyError:
        raise ConfigError(f"no icon {name!r} in the installed icon set", value=name) from None
