"""How text is read aloud: numbers, dates, amounts and codes in words, then Chinese as tone-numbered pinyin.

Chinese is read the way Chinese is read: 15元 → 十五元, 2026年12月5日 → 二〇二六年十二月五日,
第2步 → 第二步, 2份 → 两份; a run of five or more digits, or letters and digits mixed (a
reference, a verification code, a plate), is read character by character with 幺 for 1, as
telephone and police radio do, and Latin letters by the names Chinese speakers give them
(A ei, B bi...). The result goes to espeak-ng's ``cmn-latn-pinyin`` voice as pinyin with tone
numbers (pypinyin chooses each character's reading from its word, and applies the 一/不/third
tone changes), because its ``cmn`` voice reads tone digits as English numbers. English text
keeps espeak's own number reading; codes are spelled out, and Chinese inside English text
(a name, an address) is read by the Mandarin voice. No Kivy here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Voice = Literal["zh", "en"]

DIGITS = "零一二三四五六七八九"
CODE_DIGITS = "零幺二三四五六七八九"  # 1 as 幺 where digits are read one by one
# Letter names as Chinese speakers say them, in pinyin syllables the Mandarin voice reads.
LETTERS = {
    "A": "ei1", "B": "bi4", "C": "xi1", "D": "di4", "E": "yi4", "F": "ai2 fu1", "G": "ji4", "H": "ai2 qi1",
    "I": "ai4", "J": "zhei4", "K": "kai4", "L": "ai2 le5", "M": "ai2 mu5", "N": "en1", "O": "ou1", "P": "pi4",
    "Q": "qiu1", "R": "a4 er3", "S": "ai2 si1", "T": "ti4", "U": "you1", "V": "wei1", "W": "da2 bu5 liu5",
    "X": "ai2 ke4 si1", "Y": "wai4", "Z": "zei4",
}
# A lone 2 before these is 两 (两份, 共两步); after 第 it stays 二.
MEASURE_WORDS = set("份次项步张个位天件条页元分秒年月周岁人辆本名")
PAUSE = {"，": ",", "、": ",", "；": ",", "：": ",", ",": ",", ";": ",", ":": ",",
         "。": ".", "！": ".", "？": ".", ".": ".", "!": ".", "?": ".", "\n": "."}
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RE = re.compile(f"[{_HAN}]")

# --- numbers in Chinese words ---------------------------------------------------------------


def cardinal(n: int) -> str:
    """A whole number in Chinese words: 15 → 十五, 105 → 一百零五, 20000 → 两万."""
    if n < 0:
        return "负" + cardinal(-n)
    if n == 0:
        return "零"
    out = ""
    for unit, size in (("亿", 10 ** 8), ("万", 10 ** 4)):
        if n >= size:
            head, n = divmod(n, size)
            out += ("两" if head == 2 else _below_10000(head, lead=not out)) + unit
            if 0 < n < size // 10:
                out += "零"
    if n:
        out += _below_10000(n, lead=not out)
    return out


def _below_10000(n: int, *, lead: bool) -> str:
    out, zero = "", False
    for unit, size in (("千", 1000), ("百", 100), ("十", 10)):
        d, n = divmod(n, size)
        if d:
            if zero:
                out += "零"
            if d == 1 and unit == "十" and not out and lead:
                out += "十"  # 十五, not 一十五, at the very start
            else:
                two = d == 2 and (unit == "千" or (unit == "百" and not out and lead))  # 两千, 两百元
                out += ("两" if two else DIGITS[d]) + unit
            zero = False
        elif out:
            zero = True
    if n:
        out += ("零" if zero else "") + DIGITS[n]
    return out


def digits_one_by_one(text: str, *, code: bool = True) -> str:
    """Digits read one at a time: 12123 → 幺二幺二三 (years use 一: 2026 → 二零二六)."""
    table = CODE_DIGITS if code else DIGITS
    return "".join(table[int(c)] if c.isdigit() else c for c in text)


def amount(value: str) -> str:
    """An amount of yuan in words: 15 → 十五元, 15.50 → 十五元五角, 0.05 → 五分."""
    whole, _, frac = value.partition(".")
    frac = (frac + "00")[:2]
    jiao, fen = int(frac[0]), int(frac[1])
    yuan = int(whole or "0")
    out = cardinal(yuan) + "元" if yuan or not (jiao or fen) else ""
    if jiao:
        out += DIGITS[jiao] + "角"
    if fen:
        out += ("零" if yuan and not jiao else "") + DIGITS[fen] + "分"
    return out


def decimal(value: str) -> str:
    """3.5 → 三点五."""
    whole, _, frac = value.partition(".")
    return cardinal(int(whole or "0")) + ("点" + digits_one_by_one(frac, code=False) if frac else "")


def date(year: str, month: str, day: str) -> str:
    """2026, 12, 5 → 二零二六年十二月五日."""
    return f"{digits_one_by_one(year, code=False)}年{cardinal(int(month))}月{cardinal(int(day))}日"


def spell_zh(code: str) -> str:
    """A code character by character, in Chinese: 7K3Q → 七 kai4 三 qiu1 (letters as pinyin in ⟦⟧)."""
    out = []
    for c in code.upper():
        if c.isdigit():
            out.append(CODE_DIGITS[int(c)])
        elif c in LETTERS:
            out.append(f"⟦{LETTERS[c]}⟧")
        elif _HAN_RE.match(c):
            out.append(c)
        else:
            out.append("，")  # a dash or space between groups is a short pause
    return "".join(out)


_ZH_NUMBERS = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in (
    ("keep", r"⟦[^⟧]*⟧"),  # already spelled out (a code marked by spell_zh)
    ("iso_date", r"\d{4}-\d{1,2}-\d{1,2}"),
    ("date", r"\d{4}年\d{1,2}月\d{1,2}日"),
    ("year", r"\d{4}(?=年)"),
    ("time", r"\d{1,2}:\d{2}(?::\d{2})?"),
    ("yuan", r"[¥￥]\s*\d+(?:\.\d{1,2})?(?:\s*元)?|\d+(?:\.\d{1,2})?\s*元"),
    ("percent", r"\d+(?:\.\d+)?\s*[%％]"),
    ("code", r"[A-Za-z0-9]*(?:[A-Za-z][0-9]|[0-9][A-Za-z])[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"),
    ("digits", r"\d{5,}|0\d+"),
    ("decimal", r"\d+\.\d+"),
    ("count", r"第?\d{1,4}"),
    ("letters", r"[A-Za-z]+"),
)))


def _read_number(m: re.Match[str]) -> str:
    kind, text = m.lastgroup, m[0]
    if kind == "keep":
        return text
    if kind in ("iso_date", "date"):
        return date(*re.findall(r"\d+", text))
    if kind == "year":
        return digits_one_by_one(text, code=False)
    if kind == "time":
        hour, minute = (int(x) for x in text.split(":")[:2])
        return cardinal(hour) + "点" + (cardinal(minute) + "分" if minute else "")
    if kind == "yuan":
        return amount(re.search(r"\d+(?:\.\d{1,2})?", text)[0])  # type: ignore[index]
    if kind == "percent":
        return "百分之" + decimal(text.rstrip("%％ "))
    if kind in ("code", "letters"):
        return spell_zh(text)
    if kind == "digits":
        return digits_one_by_one(text)
    if kind == "decimal":
        return decimal(text)
    prefix, number = ("第", text[1:]) if text.startswith("第") else ("", text)
    following = m.string[m.end():m.end() + 1]
    if int(number) == 2 and not prefix and following in MEASURE_WORDS:
        return "两"
    return prefix + cardinal(int(number))


def normalize_zh(text: str) -> str:
    """Chinese text with every number, date, amount, code and Latin letter written as it is read."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 → 1000
    return _ZH_NUMBERS.sub(_read_number, text)


# --- Chinese to pinyin ------------------------------------------------------------------------


def pinyin_for(text: str) -> str:
    """Normalised Chinese text as tone-numbered pinyin with pauses, e.g. "qing3 jiang1 , ..."."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for chunk in re.split(r"(⟦[^⟧]*⟧)", text):
        if chunk.startswith("⟦"):
            out.extend(chunk[1:-1].split())
            continue
        for token in lazy_pinyin(chunk, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True,
                                 errors=lambda s: list(s)):
            if re.fullmatch(r"[a-z]+[1-5]", token):
                out.append(token)
            elif token in PAUSE and out and out[-1] not in (",", "."):
                out.append(PAUSE[token])
            elif token in PAUSE and out and PAUSE[token] == ".":
                out[-1] = "."
    while out and out[0] in (",", "."):
        out.pop(0)
    return " ".join(out)


# --- segments for the engine ------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch of an utterance for one voice: ``zh`` text is pinyin, ``en`` text is English."""

    voice: Voice
    text: str


def spell_en(code: str) -> str:
    """A code character by character, in English: 7K3Q → "7 K 3 Q"."""
    return " ".join(c for c in code.upper() if c.isalnum())


_DATE_EN = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_CODE_EN = re.compile(r"\b[A-Za-z0-9]*(?:[A-Za-z][0-9]|[0-9][A-Za-z])[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b|\b\d{5,}\b")


def normalize_en(text: str) -> str:
    """English text with dates, yuan amounts and codes written as they are read."""
    text = _DATE_EN.sub(lambda m: f"{_MONTHS[int(m[2]) - 1]} {int(m[3])}, {m[1]}"
                        if 1 <= int(m[2]) <= 12 else m[0], text)
    text = re.sub(r"[¥￥]\s*(\d+(?:\.\d{1,2})?)", r"\1 yuan", text)
    text = re.sub(r"\b(\d+(?:\.\d{1,2})?)\s*(?:CNY|RMB)\b", r"\1 yuan", text)
    return _CODE_EN.sub(lambda m: spell_en(m[0]), text)


def segments(text: str, lang: str) -> list[Segment]:
    """What the engine speaks for ``text`` in ``lang`` (zh_CN or en), as voice-tagged segments."""
    if lang.startswith("zh"):
        pinyin = pinyin_for(normalize_zh(text))
        return [Segment("zh", pinyin)] if pinyin else []
    out: list[Segment] = []
    for part in re.split(f"([{_HAN}][{_HAN}·，、]*)", text):
        if not part.strip():
            continue
        if _HAN_RE.match(part):
            pinyin = pinyin_for(normalize_zh(part))
            if pinyin:
                out.append(Segment("zh", pinyin))
        else:
            out.append(Segment("en", normalize_en(part).strip()))
    return [s for s in out if s.text.strip(" ,.")]
