"""Pinyin input: toneless pinyin typed on the kiosk's keyboard panel → Hanzi candidates.

The readings come from pypinyin's data (``pinyin_dict``: code point → readings with tone
marks; ``phrases_dict``: phrase → one reading list per character, for the words whose
reading is not their characters' first one), the words and their counts from jieba's
dictionary file (``dict.txt``: word, count, part of speech). Both are inverted once at
first use into a syllable → characters index and a syllable tuple → words index. Nothing
else of either library is used: segmentation and ranking are this module's.

Ranking: characters of GB2312 level 1 (the 3,755 everyday characters) before the rest; a
character whose first reading is this syllable before one for which it is a rarer reading
(的 before 底 for "de"); then how often the character is met (its count as a word plus the counts of the words that
contain it). Words by their count. For a
name field the common surnames come first for the first syllable.
"""
from __future__ import annotations

import hashlib
import logging
import marshal
import re
import sys
import threading
import unicodedata
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.caches import cache_dir
from kiosk.durable import write_atomic

# The most common Chinese surnames, by population (2020 census ranking, top 60); a short,
# checkable list of facts rather than a reading table, used only to order candidates.
COMMON_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚"
    "沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严欧莫孔向常汤"
)
# Syllables with no vowel (呣 m, 嗯 n/ng, 哼 hm/hng): exclamations nobody types into a form,
# kept out of segmentation so "wangxiaom" reads as wang xiao m… and not wang xiao 呣.
_NO_VOWEL = re.compile(r"^[^aeiouv]+$")
MAX_PHRASE_SYLLABLES = 6
CACHE_FORMAT = 2  # bump when build_data's output changes shape or meaning (2: phrases as a PhraseTable)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One choice on the candidate bar: its text and how many syllables of the input it uses."""

    text: str
    syllables: int


def toneless(reading: str) -> str:
    """'lǜ' → 'lv', 'wáng' → 'wang': tone marks dropped, ü written v as on the keyboard."""
    decomposed = unicodedata.normalize("NFD", reading.strip().lower())
    decomposed = decomposed.replace("u\u0308", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def gb2312_level1(char: str) -> bool:
    """True for a character of GB2312 level 1 (rows 16-55 of the code table)."""
    try:
        encoded = char.encode("gb2312")
    except (UnicodeEncodeError, LookupError):
        return False
    return len(encoded) == 2 and 16 <= encoded[0] - 0xA0 <= 55


class PhraseTable(Mapping[tuple[str, ...], tuple[str, ...]]):
    """Syllables → words, best first, held as two strings and their end offsets, the readings sorted.

    A dict of tuples held the 270,000 readings and 340,000 words as about a million objects,
    80 MiB of the kiosk's memory for as long as it ran; these four objects hold them in under
    10 MiB and load from the cache in milliseconds. A lookup is a binary search (microseconds).
    """

    def __init__(self, packed: Mapping[str, Any]) -> None:
        self._readings: str = packed["readings"]  # "wang xiao" for each reading, run together, sorted
        self._reading_ends = array("I", packed["reading_ends"])
        self._words: str = packed["words"]  # each reading's words, tab-separated, run together
        self._word_ends = array("I", packed["word_ends"])

    @staticmethod
    def pack(phrases: Mapping[tuple[str, ...], Sequence[str]]) -> dict[str, Any]:
        """The packed form of ``phrases`` (plain values: marshal writes and reads it as it is)."""
        readings, words = [], []
        for reading, listed in sorted((" ".join(k), v) for k, v in phrases.items()):
            readings.append(reading)
            words.append("\t".join(listed))
        return {"readings": "".join(readings), "reading_ends": _ends(readings).tobytes(),
                "words": "".join(words), "word_ends": _ends(words).tobytes()}

    def _reading(self, i: int) -> str:
        return self._readings[self._reading_ends[i - 1] if i else 0:self._reading_ends[i]]

    def __getitem__(self, syllables: tuple[str, ...]) -> tuple[str, ...]:
        wanted = " ".join(syllables)
        i = bisect_left(range(len(self)), wanted, key=self._reading)
        if i == len(self) or self._reading(i) != wanted:
            raise KeyError(syllables)
        return tuple(self._words[self._word_ends[i - 1] if i else 0:self._word_ends[i]].split("\t"))

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return (tuple(self._reading(i).split(" ")) for i in range(len(self)))

    def __len__(self) -> int:
        return len(self._reading_ends)


def _ends(parts: list[str]) -> array:
    """The end offset of each of ``parts`` in their concatenation."""
    ends, at = array("I"), 0
    for part in parts:
        at += len(part)
        ends.append(at)
    return ends


class PinyinIndex:
    """The inverted dictionaries; get one with :func:`index` (cached), not directly."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.chars: dict[str, tuple[str, ...]] = data["chars"]
        self.phrases = PhraseTable(data["phrases"])
        self.primary: dict[str, str] = data["primary"]
        self.name_uses: dict[str, int] = data["name_uses"]
        self.syllables = frozenset(s for s in self.chars if not _NO_VOWEL.match(s))
        self.prefixes = frozenset(s[:i] for s in self.syllables for i in range(1, len(s) + 1))
        self.longest = max(map(len, self.syllables))


def build_data() -> dict[str, Any]:
    """Invert the libraries' data into plain dicts (a few seconds; :func:`load_index` caches it)."""
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict

    by_syllable: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    primary: dict[str, str] = {}
    for code, readings in pinyin_dict.items():
        if code > 0xFFFF:
            continue  # outside the BMP: the kiosk's font has no glyph for them
        char = chr(code)
        seen: set[str] = set()
        for position, reading in enumerate(readings.split(",")):
            syllable = _toneless_cached(reading)
            if syllable and syllable.isalpha() and syllable not in seen:
                seen.add(syllable)
                by_syllable[syllable].append((char, position == 0))
                if position == 0:
                    primary[char] = syllable
    freq, name_uses = _word_frequencies()
    phrases: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for phrase, readings in phrases_dict.items():
        # pypinyin's phrases are those whose reading differs from the characters' first
        # readings (银行 háng): they decide how a word with such a character is read.
        if 2 <= len(phrase) <= MAX_PHRASE_SYLLABLES and len(readings) == len(phrase):
            phrases[tuple(_toneless_cached(r[0]) for r in readings)].append(phrase)
    for word in freq:
        if 2 <= len(word) <= MAX_PHRASE_SYLLABLES and word not in phrases_dict:
            key = tuple(primary.get(c, "") for c in word)
            if all(key):
                phrases[key].append(word)
    # How often a character is met in text: its count as a word plus the counts of the
    # words it is part of (警 is rare alone but common in 警察, 报警).
    char_freq: dict[str, int] = defaultdict(int)
    for word, count in freq.items():
        for char in set(word):
            char_freq[char] += count
    level1 = {c for entries in by_syllable.values() for c, _ in entries if gb2312_level1(c)}

    def char_rank(entry: tuple[str, bool]) -> tuple[bool, bool, int, str]:
        char, is_primary = entry
        return (char not in level1, not is_primary, -char_freq.get(char, 0), char)

    return {
        "chars": {s: tuple(c for c, _ in sorted(entries, key=char_rank)) for s, entries in by_syllable.items()},
        "phrases": PhraseTable.pack({k: sorted(v, key=lambda p: (-freq.get(p, 0), p)) for k, v in phrases.items()}),
        "primary": primary,
        "name_uses": name_uses,
    }


@lru_cache(maxsize=None)
def _toneless_cached(reading: str) -> str:
    return toneless(reading)


def _word_frequencies() -> tuple[dict[str, int], dict[str, int]]:
    """Word → count from jieba's dictionary file (read as data; jieba itself is not imported).

    Also character → how many of its personal names (tag ``nr``, a common surname and one
    or two more characters) use it in the given name: 明 and 伟 rank high there.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        return {}, {}
    path = Path(spec.origin).parent / "dict.txt"
    counts: dict[str, int] = {}
    names: dict[str, int] = defaultdict(int)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            parts = line.split(" ")
            if len(parts) >= 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
                word = parts[0]
                if len(parts) >= 3 and parts[2].strip() == "nr" and 2 <= len(word) <= 3 \
                        and word[0] in COMMON_SURNAMES:
                    for char in word[1:]:
                        names[char] += 1
    return counts, dict(names)


def _cache_name() -> str:
    """A file name that changes whenever the data, this code's format or Python's marshal does."""
    import importlib.metadata

    versions = []
    for dist in ("pypinyin", "jieba"):
        try:
            versions.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            versions.append("none")
    key = f"{CACHE_FORMAT}|{'|'.join(versions)}|{sys.version_info[:2]}|{marshal.version}"
    return f"pinyin-{hashlib.sha256(key.encode()).hexdigest()[:16]}.marshal"


def load_index(directory: Path | None) -> PinyinIndex:
    """The index from ``directory``'s cache file, else built and written there (None: no cache).

    marshal, not pickle: it holds only plain values and cannot run code when read. A
    damaged or unreadable cache is rebuilt; a cache that cannot be written is skipped.
    """
    path = directory / _cache_name() if directory is not None else None
    if path is not None and path.is_file():
        try:
            return PinyinIndex(marshal.loads(path.read_bytes()))
        except (ValueError, EOFError, TypeError, KeyError, OSError) as exc:
            log.warning("pinyin cache %s unreadable (%s); rebuilding", path, type(exc).__name__)
    data = build_data()
    if path is not None:
        try:
            write_atomic(path, marshal.dumps(data), 0o644)
        except OSError as exc:
            log.warning("pinyin cache not written to %s: %s", path, exc)
    return PinyinIndex(data)


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _build() -> PinyinIndex:
    return load_index(cache_dir())


def index() -> PinyinIndex:
    """The inverted dictionaries: read from the cache file, else built from the libraries' data (seconds), then kept."""
    with _lock:  # a warm-up thread and the UI thread may ask at the same moment
        return _build()


def warm_up() -> None:
    """Build the index now (call from a background thread so the first key press is quick)."""
    index()


def clean(text: str) -> str:
    """The input reduced to what pinyin can hold: lower-case a-z, ü as v, ' as a separator."""
    text = text.lower().replace("ü", "v").replace("u:", "v")
    return re.sub(r"[^a-z']", "", text)


def segment(text: str) -> list[str]:
    """Split continuous pinyin into syllables: 'wangxiaoming' → ['wang', 'xiao', 'ming'].

    Fewest syllables wins ('xian' stays one syllable; type "xi'an" for two), and among
    as few, a split without a syllable starting with a, o or e mid-word ('jinan' →
    ji nan, as pinyin spelling would write jin'an otherwise); a last
    piece that only begins a syllable ('wangx') is kept as it is. Letters that no
    syllable can start with come out as pieces of their own. Never raises.
    """
    idx = index()
    pieces: list[str] = []
    for chunk in clean(text).split("'"):
        if chunk:
            pieces.extend(_segment_chunk(chunk, idx))
    return pieces


def _segment_chunk(chunk: str, idx: PinyinIndex) -> list[str]:
    n = len(chunk)
    # best[i]: the fewest pieces covering chunk[i:], as (cost, pieces); a full syllable
    # costs 1, a leftover prefix (only at the end) 1.5, a stray letter 10.
    best: list[tuple[float, list[str]] | None] = [None] * (n + 1)
    best[n] = (0.0, [])
    for i in range(n - 1, -1, -1):
        options: list[tuple[float, list[str]]] = []
        for j in range(min(n, i + idx.longest), i, -1):
            piece = chunk[i:j]
            rest = best[j]
            if rest is None:
                continue
            if piece in idx.syllables:
                # Pinyin spelling puts an apostrophe before a syllable that starts with a, o
                # or e inside a word (xi'an, fang'an): without one, such a split is the
                # less likely reading ('jinan' is ji-nan, 济南, before jin-an).
                cost = 1.25 if i > 0 and piece[0] in "aoe" else 1.0
                options.append((cost + rest[0], [piece] + rest[1]))
            elif j == n and piece in idx.prefixes:
                options.append((1.5 + rest[0], [piece]))
        if not options and best[i + 1] is not None:
            rest = best[i + 1]
            options.append((10 + rest[0], [chunk[i]] + rest[1]))
        if options:
            best[i] = min(options, key=lambda o: o[0])  # min keeps the first (longest) on ties
    found = best[0]
    return found[1] if found else list(chunk)


def reading(text: str) -> str:
    """Toneless pinyin of Chinese text, syllables run together ('王小明' → 'wangxiaoming'); '' if a character is unknown."""
    idx = index()
    out = []
    for char in text:
        syllable = idx.primary.get(char)
        if syllable is None:
            return ""
        out.append(syllable)
    return "".join(out)


def chars_for(syllable: str, *, name: bool = False) -> tuple[str, ...]:
    """Characters read ``syllable`` (any tone), best first; a prefix ('zh') lists those of every syllable it starts."""
    idx = index()
    found = idx.chars.get(syllable)
    if found is None:
        starting = sorted(s for s in idx.syllables if s.startswith(syllable)) if syllable else []
        merged = [c for s in starting for c in idx.chars[s][:40]]
        found = tuple(dict.fromkeys(merged))
    if name:
        surnames = [c for c in COMMON_SURNAMES if c in found]
        found = tuple(dict.fromkeys(surnames + list(found)))
    return found


def candidates(text: str, *, name: bool = False, limit: int = 200) -> list[Candidate]:
    """Candidates for typed pinyin, best first: whole phrases, a composed reading, then characters.

    ``name`` puts common surnames first (for a name field). Each candidate says how many
    leading syllables it uses, so the rest stays in composition after it is chosen.
    Never raises; empty for input with no pinyin in it.
    """
    syllables = segment(text)
    if not syllables:
        return []
    idx = index()
    out: list[Candidate] = []
    complete = [s for s in syllables if s in idx.chars]
    whole = len(complete) == len(syllables)
    if len(syllables) >= 2 and whole:
        phrases = idx.phrases.get(tuple(syllables), ())
        composed = _compose(syllables, idx)
        named = _compose_name(syllables, idx, surname=name) if len(syllables) <= 4 else ""
        if name:  # a whole "word" that starts with a surname is most likely the name itself
            phrases = tuple(sorted(phrases, key=lambda p: p[0] not in COMMON_SURNAMES))
            first = [p for p in phrases if p[0] in COMMON_SURNAMES]
            ordered = first + [named, composed] + list(phrases[len(first):])
        else:
            ordered = list(phrases[:1]) + [composed] + list(phrases[1:]) + [named]
        out.extend(Candidate(p, len(syllables)) for p in ordered if p)
    for k in range(min(len(syllables) - 1, MAX_PHRASE_SYLLABLES), 1, -1):
        out.extend(Candidate(p, k) for p in idx.phrases.get(tuple(syllables[:k]), ()))
    out.extend(Candidate(c, 1) for c in chars_for(syllables[0], name=name))
    unique: dict[str, Candidate] = {}
    for candidate in out:
        unique.setdefault(candidate.text, candidate)
    return list(unique.values())[:limit]


def _compose_name(syllables: list[str], idx: PinyinIndex, *, surname: bool) -> str:
    """The input read as a personal name: a surname (when asked) then the commonest given-name characters."""
    parts = [chars_for(syllables[0], name=True)[0]] if surname else []
    for syllable in syllables[len(parts):]:
        chars = [c for c in idx.chars[syllable][:80] if idx.primary.get(c) == syllable] or idx.chars[syllable]
        parts.append(max(chars, key=lambda c: (idx.name_uses.get(c, 0), -chars.index(c))))
    return "".join(parts)


def _compose(syllables: list[str], idx: PinyinIndex) -> str:
    """One reading for the whole input: the longest known phrases, else the best character each."""
    parts: list[str] = []
    i = 0
    while i < len(syllables):
        for k in range(min(len(syllables) - i, MAX_PHRASE_SYLLABLES), 0, -1):
            if k == 1:
                parts.append(idx.chars[syllables[i]][0])
                break
            phrases = idx.phrases.get(tuple(syllables[i:i + k]))
            if phrases:
                parts.append(phrases[0])
                break
        i += k
    return "".join(parts)
