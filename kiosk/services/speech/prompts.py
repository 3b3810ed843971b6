"""The fixed prompts every resident hears, rendered into the prompt cache at start (off the UI thread).

Msgids are English and translated through the same catalogs as the screens, so what is
cached is exactly what a screen says; screens that add prompts add their msgids here. The
step clause ("第2步，共5步") and the catalog's item and category names are warmed too,
since every screen's heading and step are made of them. No Kivy here.
"""
from __future__ import annotations

from typing import Any, Iterator

from kiosk.i18n import LANGUAGES, normalize, translate
from kiosk.services.speech.utterance import Personal

FIXED_MSGIDS = (
    "Welcome. Please choose a service.",
    "Choose a service",
    "Please wait...",
    "Place your ID card on the reader",
    "Place your passport or travel permit on the reader",
    "Place your passport or travel permit on the reader, photo page down",
    "Look at the camera above the screen",
    "Please confirm",
    "Please check the details above. Touch the green button to continue.",
    "Please take your ID card and your documents.",
    "Please take your documents and receipt.",
    "Your personal data is used only for this service and is deleted when you finish.",
)
STEP_MSGID = "Step {n} of {total}"
MAX_STEPS = 6
# What is said in place of personal data while listening is not private, by kind of data.
MASKED_MSGIDS = {
    "name": "Name read",
    "id_number": "ID number read",
    "address": "Address read",
    "plate": "Plate number shown on the screen",
    "amount": "Amount shown on the screen",
    "other": "Personal details shown on the screen",
}


def personal(kind: str, value: str, lang: str = "zh_CN") -> Personal:
    """``value`` marked as personal data of ``kind`` (name, id_number, address, plate, amount, other)."""
    return Personal(str(value), translate(MASKED_MSGIDS.get(kind, MASKED_MSGIDS["other"]), normalize(lang)))


def step(n: int, total: int, lang: str = "zh_CN") -> str:
    """The step clause: 第2步，共5步 / Step 2 of 5."""
    return translate(STEP_MSGID, normalize(lang)).format(n=n, total=total)


def fixed_prompts(catalog: Any = None, languages: tuple[str, ...] = LANGUAGES) -> Iterator[tuple[str, str]]:
    """(text, lang) for every fixed prompt, step clause and (with ``catalog``) item and category name."""
    from kiosk.services.face.guide import GUIDANCE_TEXTS

    for lang in languages:
        for msgid in FIXED_MSGIDS:
            yield translate(msgid, lang), lang
        for msgid in GUIDANCE_TEXTS.values():  # the face screen says each as a sentence of its own
            yield translate(msgid, lang) + ("。" if lang == "zh_CN" else "."), lang
        step = translate(STEP_MSGID, lang)
        for total in range(2, MAX_STEPS + 1):
            for n in range(1, total + 1):
                yield step.format(n=n, total=total), lang
        if catalog is not None:
            zh = lang.startswith("zh")
            seen: set[str] = set()
            for item in catalog.items:
                for name in (item.name_zh if zh else item.name_en, item.category_zh if zh else item.category_en):
                    if name and name not in seen:
                        seen.add(name)
                        yield name, lang
