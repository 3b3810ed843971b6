"""How the kiosk reads text aloud: Chinese numbers, dates, amounts and codes, and every Chinese
string it can speak checked in espeak-ng's own phonemes (no syllable read as English)."""
from __future__ import annotations

import ast
import re
import string
import subprocess
from collections import defaultdict
from pathlib import Path

import polib
import pytest

from kiosk.errors import KioskError
from kiosk.i18n import LOCALE_DIR
from kiosk.services.catalog import Catalog
from kiosk.services.speech.engine import VOICE_ZH
from kiosk.services.speech.reading import (amount, cardinal, normalize_en, normalize_zh, pinyin_for, segments,
                                           spell_zh)

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u3400-\u9fff]")


# --- rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("n, words", [(0, "零"), (2, "二"), (10, "十"), (15, "十五"), (20, "二十"), (105, "一百零五"),
                                      (110, "一百一十"), (200, "两百"), (1005, "一千零五"), (2000, "两千"), (12000, "一万两千"),
                                      (20000, "两万"), (100050, "十万零五十"), (300000000, "三亿")])
def test_cardinal_numbers(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize("text, read", [
    ("应缴金额15元", "应缴金额十五元"),
    ("罚款¥200.50", "罚款两百元五角"),
    ("0.05元", "五分"),
    ("有效期至2026年12月5日", "有效期至二零二六年十二月五日"),
    ("2024-05-01", "二零二四年五月一日"),
    ("第2步，共5步", "第二步，共五步"),
    ("共2份", "共两份"),
    ("剩余3次", "剩余三次"),
    ("14:30", "十四点三十分"),
    ("交管12123", "交管幺二幺二三"),
    ("1,000元", "一千元"),
    ("3.5%", "百分之三点五"),
])
def test_chinese_is_read_the_way_chinese_is_read(text: str, read: str) -> None:
    assert normalize_zh(text) == read


def test_codes_plates_and_letters_are_read_one_character_at_a_time() -> None:
    assert pinyin_for(normalize_zh("验证码7K3Q-9XPM")) == \
        "yan4 zheng4 ma3 qi1 kai4 san1 qiu1 , jiu3 ai2 ke4 si1 pi4 ai2 mu5"
    assert pinyin_for(normalize_zh("鲁A12345")) == "lu3 ei1 yao1 er4 san1 si4 wu3"
    assert pinyin_for(normalize_zh("A4打印机")) == "ei1 si4 da3 yin4 ji1"
    assert pinyin_for(spell_zh("123")) == "yao1 er4 san1"  # short codes too, when marked as a code
    assert amount("15") == "十五元" and amount("15.05") == "十五元零五分"


def test_chinese_characters_take_their_reading_from_the_word_and_tones_change() -> None:
    assert pinyin_for("银行") == "yin2 hang2" and pinyin_for("行驶") == "xing2 shi3"
    assert pinyin_for("不要") == "bu2 yao4"  # 不 before a fourth tone
    assert pinyin_for("你好，请稍候。") == "ni2 hao3 , qing3 shao1 hou4 ."


def test_english_text_spells_codes_and_reads_chinese_with_the_mandarin_voice() -> None:
    assert normalize_en("Code 7K3Q-9XPM, fee ¥15, on 2026-12-05") == \
        "Code 7 K 3 Q 9 X P M, fee 15 yuan, on December 5, 2026"
    segs = segments("Name: 王小明. Step 2 of 5", "en")
    assert [s.voice for s in segs] == ["en", "zh", "en"]
    assert segs[1].text == "wang2 xiao3 ming2"


# --- every Chinese string the kiosk can speak, in espeak-ng's phonemes ------------------------
def _valid_syllables() -> set[str]:
    from pypinyin import Style, pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    out: set[str] = set()
    for code in pinyin_dict:
        for reading in pinyin(chr(code), style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]:
            out.add(reading.rstrip("12345"))
    return out


_SAMPLE_VALUES = {"amount": "15.50", "seconds": "30", "count": "2", "n": "3", "total": "5", "code": "7K3Q9XPM",
                  "name": "王小明", "time": "2026-12-05 14:30", "minutes": "5", "attempts_left": "2",
                  "reference": "SF20240001", "date": "2026-12-05"}


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return "3"


def _fill(template: str) -> str:
    try:
        return string.Formatter().vformat(template, (), _Values(_SAMPLE_VALUES))
    except (ValueError, IndexError, KeyError):
        return template


def speakable_chinese() -> dict[str, str]:
    """Every Chinese string the kiosk can speak, by where it comes from."""
    found: dict[str, str] = {}
    catalog = Catalog.load()
    for item in catalog.items:
        for text in (item.name_zh, item.category_zh, item.guide_zh, *item.materials_zh):
            found.setdefault(text, f"catalog {item.id}")
        for f in item.fields:
            for text in (f.label_zh, f.hint_zh or "", *(c.label_zh for c in f.choices)):
                found.setdefault(text, f"catalog {item.id}.{f.name}")
    for po in sorted((LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        for entry in polib.pofile(str(po)):
            if entry.msgstr:
                found.setdefault(_fill(entry.msgstr), f"{po.name}: {entry.msgid[:40]}")
    for error in _all_subclasses(KioskError):
        found.setdefault(error("").message("zh_CN") if _constructible(error) else "", f"error {error.__name__}")
    for path in sorted((ROOT / "kiosk" / "backend_sim").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and HAN.search(node.value) \
                    and not re.search(r"\b(INSERT|SELECT|CREATE|UPDATE|VALUES)\b", node.value):
                found.setdefault(node.value, f"backend simulator {path.name}")
    return {text: where for text, where in found.items() if text and HAN.search(text)}


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def _constructible(cls: type) -> bool:
    try:
        cls("")
        return True
    except (TypeError, ValueError):  # e.g. UpdateRefused checks its reason against the known ones
        return False


def _phonemes(pinyin: str) -> str:
    return subprocess.run(["espeak-ng", "-v", VOICE_ZH, "-q", "-x", "--", pinyin], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def _problems(text: str, valid: set[str]) -> list[str]:
    pinyin = pinyin_for(normalize_zh(text))
    syllables = [s for s in pinyin.split() if s not in (",", ".")]
    wrong = [s for s in syllables if not re.fullmatch(r"[a-z]+[1-5]", s) or s[:-1] not in valid]
    if wrong:
        return [f"not Mandarin syllables {wrong} in {pinyin!r}"]
    phon = _phonemes(pinyin)
    tokens = phon.split()
    out = []
    if "(en)" in phon or "(" in phon:
        out.append(f"espeak switched language: {phon!r}")
    if len(tokens) != len(syllables):
        out.append(f"{len(syllables)} syllables became {len(tokens)} phoneme words: {pinyin!r} -> {phon!r}")
    toneless = [t for t in tokens if not re.search(r"[1-5]{2,3}|[1-5]_", t)]
    if toneless:
        out.append(f"phoneme words without a Mandarin tone: {toneless} in {phon!r}")
    return out


def test_every_chinese_string_the_kiosk_speaks_is_read_as_mandarin_syllables() -> None:
    texts = speakable_chinese()
    sources = defaultdict(int)
    for where in texts.values():
        sources[where.split()[0]] += 1
    assert sources["catalog"] > 100 and len(texts) > 1000, sources  # the collection itself must not come up empty
    valid = _valid_syllables()
    assert {"ei", "qiu", "zhei", "yao", "er"} <= valid
    batch: list[str] = []
    failures: dict[str, list[str]] = {}
    for text in texts:
        batch.append(text)
        if len(batch) == 60:
            failures.update(_check_batch(batch, valid))
            batch = []
    failures.update(_check_batch(batch, valid))
    assert not failures, "\n".join(f"{texts[t]}: {t!r}: {p}" for t, ps in list(failures.items())[:20] for p in ps)


def _check_batch(batch: list[str], valid: set[str]) -> dict[str, list[str]]:
    """Check a batch in one espeak-ng run; only when it fails, find the strings at fault one by one."""
    if not batch:
        return {}
    pinyin = " . ".join(pinyin_for(normalize_zh(t)) for t in batch)
    syllables = [s for s in pinyin.split() if s not in (",", ".")]
    phon = _phonemes(pinyin)
    if (all(re.fullmatch(r"[a-z]+[1-5]", s) and s[:-1] in valid for s in syllables)
            and "(" not in phon and len(phon.split()) == len(syllables)):
        return {}
    return {t: p for t in batch if (p := _problems(t, valid))}


def test_the_check_catches_what_the_cmn_voice_gets_wrong() -> None:
    # The measured fault this design avoids: tone digits read as English numbers.
    phon = subprocess.run(["espeak-ng", "-v", "cmn", "-q", "-x", "--", "qing3"], capture_output=True, text=True,
                          check=True).stdout
    assert "(en)" in phon
    assert _problems("请", _valid_syllables()) == []
    assert _problems("ID", _valid_syllables()) == []  # letters are said as Chinese letter names
    assert "hello"[:-1] not in _valid_syllables()


def test_the_check_fails_on_syllables_espeak_would_read_in_english(monkeypatch: pytest.MonkeyPatch) -> None:
    valid = _valid_syllables()
    monkeypatch.setitem(globals(), "pinyin_for", lambda _text: "qing3 hello3")
    assert _problems("请", valid) and _check_batch(["请", "好"], valid)
    monkeypatch.setitem(globals(), "pinyin_for", lambda _text: "qing3 ID")
    assert _problems("请", valid)
