"""Translations through gettext. Message ids are English; Chinese (zh_CN) is the default.

The catalogs are kept as .po files under kiosk/locale/<lang>/LC_MESSAGES/ — one file per
part of the program (kiosk.po for errors, ui.po for screens, ...) merged at load — and
compiled in memory with polib, so no build step can leave a stale .mo behind.
"""
from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kiosk"
DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = ("zh_CN", "en")


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    """The gettext translations for ``lang`` (NullTranslations for English or a missing catalog)."""
    po_paths = sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))
    if lang == "en" or not po_paths:
        return gettext.NullTranslations()
    import polib

    merged = polib.pofile(str(po_paths[0]))
    seen = {e.msgid for e in merged}
    for extra in po_paths[1:]:
        for entry in polib.pofile(str(extra)):
            if entry.msgid not in seen:
                merged.append(entry)
                seen.add(entry.msgid)
    return gettext.GNUTranslations(io.BytesIO(merged.to_binary()))


def translate(msgid: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """Translate one English msgid into ``lang``."""
    return translations(normalize(lang)).gettext(msgid)


def normalize(lang: str) -> str:
    """Map zh, zh-CN, zh_CN.UTF-8 to zh_CN and anything English to en."""
    lang = lang.replace("-", "_").split(".")[0]
    if lang.lower().startswith("zh"):
        return "zh_CN"
    return "en"
