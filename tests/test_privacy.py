"""Masking of personal data in free text and log records: numbers beside Chinese text, +86
phones, 15-digit IDs, passport and permit numbers, tracebacks."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from kiosk.privacy import MASKING_FILTER, mask_document_number, mask_text

ID18, ID15, PHONE = "37010219850315123X", "370102850315123", "13800138000"


@pytest.mark.parametrize("text, expected", [
    ("身份证370102198503151234号", "身份证3701**********1234号"),
    ("身份证号码：37010219850315123X，", "身份证号码：3701**********123X，"),
    ("手机13800138000", "手机138****8000"),
    ("电话+86 138 0013 8000", "电话+86 138****8000"),
    ("+8613800138000", "+86138****8000"),
    ("0086-138-0013-8000。", "0086-138****8000。"),
    ("旧证370102850315123到期", "旧证3701*******5123到期"),
    ("护照号E12345678已过期", "护照号E******78已过期"),
    ("护照EA1234567", "护照E******67"),
    ("通行证C12345678", "通行证C******78"),
    ("回乡证H1234567801", "回乡证H********01"),
    ("台胞证12345678", "台胞证1*****78"),
    ("passport L898902C scanned", "passport L*****2C scanned"),
    ("document_number=G12345678", "document_number=G******78"),
    ("card 37010219850315123X of 王小明", "card 3701**********123X of 王小明"),
    ("holder -E12345678 at the counter", "holder -E******78 at the counter"),
    ("护照-E12345678", "护照-E******78"),
])
def test_numbers_are_masked_wherever_they_stand(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize("text", [
    "txn=H0120261129000042 order=PO2026112900000001 document=D1a2b3c4d5e6f7a8b9c0d",
    "item H01 for T03, terminal JN-TEST-0007, plate 鲁A12345",
    "nonce=0123456789abcdef0123456789abcdef took 1234567 ms at 2026-11-29 12:00:00",
    "the permit expired; the passport holder was told",
    "operation outcome unknown (reference JN-DEMO-0001-C5321655)",  # a kiosk reference shaped like a passport
])
def test_references_and_ordinary_words_stay_readable(text: str) -> None:
    assert mask_text(text) == text


_CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=0, max_size=4)
_EDGE = st.one_of(_CJK, st.sampled_from(["", " ", "：", "=", "ID", "no.", "（", "\n"]))


@given(_EDGE, st.from_regex(r"[1-9][0-9]{16}[0-9X]", fullmatch=True), _EDGE)
def test_an_id_number_between_any_chinese_or_punctuation_is_masked(before: str, number: str, after: str) -> None:
    masked = mask_text(before + number + after)
    assert number not in masked and number[6:14] not in masked
    assert masked == before + number[:4] + "*" * 10 + number[-4:] + after


@given(_EDGE, st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), _EDGE)
def test_a_mobile_number_between_any_chinese_or_punctuation_is_masked(before: str, phone: str, after: str) -> None:
    assert mask_text(before + phone + after) == before + phone[:3] + "****" + phone[-4:] + after


def test_mask_document_number_keeps_first_and_last_two() -> None:
    assert (mask_document_number("E12345678"), mask_document_number("ABCD")) == ("E******78", "****")


def test_a_traceback_in_the_log_is_masked(tmp_path: Path) -> None:
    out = tmp_path / "log.txt"
    handler = logging.FileHandler(out, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MASKING_FILTER)
    log = logging.getLogger("kiosk.tests.privacy")
    log.addHandler(handler)
    MASKING_FILTER.register("王小明")
    try:
        try:
            raise ValueError(f"no record for 王小明 {ID18}, phone {PHONE}")
        except ValueError:
            log.exception("lookup failed")
        log.warning("where: %s", "here", stack_info=True)  # a stack dump goes through the filter too
    finally:
        MASKING_FILTER.forget()
        log.removeHandler(handler)
        handler.close()
    text = out.read_text("utf-8")
    assert "Traceback (most recent call last)" in text and "ValueError: no record for 王*明" in text
    assert "3701**********123X" in text and "138****8000" in text and "Stack (most recent call last)" in text
    assert ID18 not in text and "王小明" not in text and PHONE not in text


def test_the_cli_masks_what_it_prints_about_a_crash(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import kiosk.cli

    def crash(_args: object) -> int:
        raise KeyError(f"resident {ID18} phone {PHONE}")

    monkeypatch.setattr(kiosk.cli, "_resolve", lambda spec: crash)
    assert kiosk.cli.main(["catalog"]) == 70
    err = capsys.readouterr().err
    assert "internal_error" in err and "3701**********123X" in err and ID18 not in err and PHONE not in err
