"""Pinyin segmentation and candidates (the data comes from pypinyin and jieba's dictionary)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.services import pinyin


def texts(found: list[pinyin.Candidate]) -> list[str]:
    return [c.text for c in found]


def test_continuous_pinyin_is_split_into_syllables() -> None:
    assert pinyin.segment("wangxiaoming") == ["wang", "xiao", "ming"]
    assert pinyin.segment("zhongguo") == ["zhong", "guo"]
    assert pinyin.segment("shenfenzheng") == ["shen", "fen", "zheng"]
    assert pinyin.segment("xian") == ["xian"]  # fewest syllables: 先, not 西安
    assert pinyin.segment("xi'an") == ["xi", "an"]  # the separator decides
    assert pinyin.segment("WangXiaoMing") == ["wang", "xiao", "ming"]  # case does not matter
    # As many syllables either way: the split without a mid-word a/o/e syllable, as pinyin
    # spelling has it (jin'an would carry an apostrophe), so the city comes first.
    assert pinyin.segment("jinan") == ["ji", "nan"]
    assert pinyin.candidates("jinan")[0].text == "济南"
    assert pinyin.segment("tiananmen") == ["tian", "an", "men"]  # fewer syllables still wins
    assert pinyin.segment("jin'an") == ["jin", "an"]


def test_an_unfinished_last_syllable_is_kept_as_typed() -> None:
    assert pinyin.segment("wangx") == ["wang", "x"]
    assert pinyin.segment("zh") == ["zh"]


def test_u_with_umlaut_is_typed_as_v() -> None:
    assert pinyin.toneless("lǜ") == "lv" and pinyin.toneless("nǚ") == "nv"
    assert "绿" in texts(pinyin.candidates("lv"))[:10]
    assert texts(pinyin.candidates("nü"))[0] == "女"
    assert pinyin.segment("lüse") == ["lv", "se"]


def test_tone_marks_are_ignored() -> None:
    assert pinyin.toneless("wáng") == "wang" and pinyin.toneless("zhōng") == "zhong"


def test_common_syllables_offer_the_expected_characters() -> None:
    expected = {"de": "的", "shi": "是", "wo": "我", "ren": "人", "zhong": "中", "guo": "国",
                "xiao": "小", "ming": "明", "jing": "警", "hao": "号", "lu": "路"}
    for syllable, char in expected.items():
        assert char in texts(pinyin.candidates(syllable))[:15], syllable
    assert texts(pinyin.candidates("de"))[0] == "的"


def test_everyday_characters_come_before_rare_ones() -> None:
    found = texts(pinyin.candidates("wang"))
    level1 = [pinyin.gb2312_level1(c) for c in found]
    assert level1 == sorted(level1, reverse=True)  # all of GB2312 level 1 first
    assert pinyin.gb2312_level1("王") and not pinyin.gb2312_level1("㳗") and not pinyin.gb2312_level1("a")


def test_a_name_field_puts_common_surnames_first() -> None:
    assert texts(pinyin.candidates("wang", name=True))[0] == "王"
    assert texts(pinyin.candidates("zhang", name=True))[0] == "张"
    assert texts(pinyin.candidates("li", name=True))[0] == "李"
    assert texts(pinyin.candidates("li"))[0] != "李"  # elsewhere the commonest word wins (里, 理...)


def test_words_for_multi_syllable_input() -> None:
    assert "小明" in texts(pinyin.candidates("xiaoming"))
    assert texts(pinyin.candidates("zhongguo"))[0] == "中国"
    assert texts(pinyin.candidates("shenfenzheng"))[0] == "身份证"
    assert "王小明" in texts(pinyin.candidates("wangxiaoming", name=True))[:3]
    # Every candidate says how much of the input it uses: the rest stays to be chosen.
    by_text = {c.text: c.syllables for c in pinyin.candidates("wangxiaoming")}
    assert by_text["王"] == 1 and by_text["王小明"] == 3


def test_reading_gives_the_pinyin_to_type() -> None:
    assert pinyin.reading("王小明") == "wangxiaoming"
    assert pinyin.reading("a") == ""


def test_nothing_to_convert_gives_no_candidates() -> None:
    assert pinyin.candidates("") == [] and pinyin.candidates("123 !?") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_input_never_raises(text: str) -> None:
    found = pinyin.candidates(text)
    assert all(isinstance(c, pinyin.Candidate) and c.text and c.syllables >= 1 for c in found)
    syllables = pinyin.segment(text)
    assert "".join(syllables) == pinyin.clean(text).replace("'", "")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz'", max_size=30), st.booleans())
def test_letter_input_segments_into_the_same_letters(text: str, name: bool) -> None:
    assert "".join(pinyin.segment(text)) == text.replace("'", "")
    found = pinyin.candidates(text, name=name)
    assert len(found) == len({c.text for c in found})  # no candidate twice


def test_the_index_is_cached_in_a_file_and_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    built = pinyin.load_index(tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".marshal"
    loaded = pinyin.load_index(tmp_path)
    assert loaded.chars == built.chars and loaded.phrases == built.phrases
    files[0].write_bytes(b"not marshal data")
    again = pinyin.load_index(tmp_path)
    assert again.chars["wang"] == built.chars["wang"]
    assert pinyin.load_index(tmp_path).phrases[("zhong", "guo")][0] == "中国"  # rewritten, readable


_syllables = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
_words = st.text(alphabet="中国王小明人民银行警察", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(_syllables, _syllables) | st.tuples(_syllables, _syllables, _syllables),
                       st.lists(_words, min_size=1, max_size=4), max_size=40))
def test_the_packed_phrase_table_holds_what_it_was_given(phrases: dict) -> None:
    table = pinyin.PhraseTable(pinyin.PhraseTable.pack(phrases))
    assert len(table) == len(phrases)
    assert dict(table.items()) == {k: tuple(v) for k, v in phrases.items()}  # words keep their order (best first)
    assert table.get(("zz", "zz", "zz", "zz")) is None
    with pytest.raises(KeyError):
        table[("not", "there", "at", "all")]


def test_the_phrase_table_survives_the_cache_file(tmp_path: Path) -> None:
    pinyin.load_index(tmp_path)
    loaded = pinyin.load_index(tmp_path)
    assert isinstance(loaded.phrases, pinyin.PhraseTable)
    assert loaded.phrases[("yin", "hang")][0] == "银行"
    assert ("zhong", "guo") in loaded.phrases
