"""Every text the screens show has its Chinese translation (the default language)."""
from __future__ import annotations

import re
from pathlib import Path

import kiosk
from kiosk.i18n import translate

ROOT = Path(kiosk.__file__).parent
# tr("..."), app.tr("...", app.lang), and msgids kept in dicts for tr(...) look-ups
_CALL = re.compile(r'\btr\(\s*"((?:[^"\\]|\\.)+)"(?:\s*\n?\s*"((?:[^"\\]|\\.)*)")?')
_DICT_MSGIDS = re.compile(r'"[a-z_]+": "([A-Z][^"]+)"')


def used_msgids() -> set[str]:
    found: set[str] = set()
    for path in [ROOT / "app.py", *sorted((ROOT / "screens").glob("*.py")), *sorted((ROOT / "screens").glob("*.kv"))]:
        text = path.read_text(encoding="utf-8")
        for m in _CALL.finditer(text):
            found.add(m.group(1) + (m.group(2) or ""))
        if path.suffix == ".py":
            found.update(_DICT_MSGIDS.findall(text))
    return found


def test_screens_use_many_texts() -> None:
    assert len(used_msgids()) > 60


def test_every_screen_text_has_a_chinese_translation() -> None:
    missing = sorted(m for m in used_msgids() if translate(m, "zh_CN") == m)
    assert not missing, missing


def test_english_is_the_msgid_itself() -> None:
    for msgid in used_msgids():
        assert translate(msgid, "en") == msgid
