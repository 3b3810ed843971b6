"""The translation catalogs: the .po files merged at load agree with one another."""
from __future__ import annotations

import polib

from kiosk.i18n import LANGUAGES, LOCALE_DIR


def test_a_msgid_has_one_translation_across_the_catalogs() -> None:
    # The merge keeps the first file's translation (in file-name order) and drops the others silently:
    # fleet.po's 确定 once replaced the step bar's 确认 for "Confirm", its 群众 the confirm screen's 办理人.
    read = 0
    for lang in LANGUAGES:
        seen: dict[str, tuple[str, str]] = {}
        clashes = []
        for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
            for entry in polib.pofile(str(path)):
                if not entry.msgstr or entry.msgctxt:
                    continue
                read += 1
                first = seen.setdefault(entry.msgid, (entry.msgstr, path.name))
                if first[0] != entry.msgstr:
                    clashes.append((entry.msgid, first, (entry.msgstr, path.name)))
        assert not clashes, clashes
    assert read > 300  # the catalogs were read
