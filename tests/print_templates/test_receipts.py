"""Receipt bytes: Chinese mode, GB18030, full-width punctuation, raster fallback, QR and cut."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from kiosk.hardware.escpos_stream import tokenize
from print_templates.escpos_decode import decode
from print_templates.qr import qr_matrix, qr_text
from print_templates.receipts import (CHINESE_OFF, CHINESE_ON, CUT, EscposEncoder, ReceiptInvalid,
                                      get_profile, render_receipt, text_columns)

DATA = {
    "item_name_zh": "户籍证明开具", "item_name_en": "Household registration certificate",
    "terminal_id": "JN-TEST-0007", "time": "2026-11-29 12:00:00", "reference": "H01-20261129-0001",
    "lines": [["姓名", "王*明"], ["公民身份号码", "37010219850315123X"], ["份数", "1"]],
    "verification_code": "7K3F9Q2M", "qr_payload": '{"d":"DOC-1","v":"7K3F9Q2M"}', "signature": "c2lnbmF0dXJl",
}


def _text_tokens_in_mode(data: bytes) -> list[tuple[bool, bytes]]:
    """(chinese_mode_on, bytes) for every text run, replaying FS & / FS . / ESC @."""
    mode, out = False, []
    for tok in tokenize(data):
        if tok.name in ("FS .", "ESC @"):
            mode = False
        elif tok.name == "FS &":
            mode = True
        elif tok.kind == "text":
            out.append((mode, tok.data))
    return out


def test_fs_and_mode_sends_chinese_mode_before_every_han_line_in_gb18030() -> None:
    data = render_receipt("transaction", DATA, profile="80mm")
    assert CHINESE_ON + "户籍证明开具".encode("gb18030") + CHINESE_OFF in data
    runs = _text_tokens_in_mode(data)
    assert any(mode for mode, _ in runs)
    for mode, run in runs:
        if any(b >= 0x80 for b in run):
            assert mode, f"high bytes outside FS & mode: {run!r}"


def test_full_width_punctuation_alone_is_not_a_question_mark() -> None:
    enc = EscposEncoder("80mm").init()
    enc.text("，。：；（）【】！？")
    data = enc.bytes()
    assert b"?" not in data
    assert CHINESE_ON + "，。：；（）【】！？".encode("gb18030") + CHINESE_OFF in data
    assert decode(data).lines == ("，。：；（）【】！？",)


def test_receipt_ends_with_a_cut_and_decodes_back() -> None:
    data = render_receipt("transaction", DATA)
    assert data.startswith(b"\x1b@") and data.endswith(CUT)
    out = decode(data)
    assert out.cuts == 1 and out.problems == ()
    assert "户籍证明开具" in out.lines
    assert "终端编号：JN-TEST-0007" in out.lines
    assert "核验码：7K3F9Q2M" in out.lines
    assert out.qr_codes == (qr_text(DATA["qr_payload"], DATA["signature"]),)
    assert b"?" not in data.replace(DATA["qr_payload"].encode(), b"")


def test_receipts_never_print_a_full_id_number() -> None:
    out = decode(render_receipt("transaction", DATA))
    assert "公民身份号码：3701**********123X" in out.lines
    assert "37010219850315123X" not in out.text


@pytest.mark.parametrize("reference", ["JN-DEMO-0001-B8375914", "JN-DEMO-0001-12345678", "JN-TEST-0007-AB1234567"])
def test_the_kiosks_own_reference_and_terminal_print_whole(reference: str) -> None:
    # A kiosk reference is the terminal id and the transaction's hex: nothing personal, and the
    # counter reads it to find the case. Shaped like a passport number ("B8375914"), it was masked.
    out = decode(render_receipt("transaction", {**DATA, "reference": reference}))
    assert f"业务编号：{reference}" in out.lines
    assert "终端编号：JN-TEST-0007" in out.lines
    assert "公民身份号码：3701**********123X" in out.lines  # the lines the backend sends stay masked


def test_the_slip_of_an_unknown_outcome_prints_its_kiosk_reference_whole() -> None:
    # The reference a resident is given when an outcome was unknown is the terminal id and the
    # transaction's first 8 hex digits; about one in thirty is a letter and seven digits, the shape
    # of a passport number, and was masked on the slip when it went out as one of the backend's lines.
    reference = "JN-DEMO-0001-C5321655"
    out = decode(render_receipt("transaction", {**DATA, "kiosk_ref": reference}))
    assert f"受理编号 Kiosk ref.：{reference}" in out.lines
    assert "公民身份号码：3701**********123X" in out.lines
    assert not any("受理编号" in line for line in decode(render_receipt("transaction", DATA)).lines)


def test_raster_mode_sends_no_chinese_bytes_only_images() -> None:
    data = render_receipt("transaction", DATA, profile="58mm:raster")
    assert CHINESE_ON not in data
    for _, run in _text_tokens_in_mode(data):
        assert all(b < 0x80 for b in run)
    out = decode(data)
    assert len(out.images) >= 8  # header, title, item name and the Chinese lines
    assert all(img.width == 384 for img in out.images)
    assert any(any(img.dot(x, y) for y in range(img.height) for x in range(img.width)) for img in out.images)
    assert "Household registration" in out.text  # ASCII stays text
    assert out.cuts == 1


def test_a_character_beyond_the_printer_font_is_rasterised_in_fs_and_mode() -> None:
    enc = EscposEncoder("80mm").init()
    enc.text("姓名：王㛃").text("性别：男")
    out = decode(enc.bytes())
    assert len(out.images) == 1
    assert out.lines == ("性别：男",)


def test_raster_qr_mode_sends_the_qr_as_an_image() -> None:
    data = render_receipt("transaction", DATA, profile="80mm:fs_and:raster")
    out = decode(data)
    assert out.qr_codes == ()
    assert b"\x1d(k" not in data
    matrix = qr_matrix(qr_text(DATA["qr_payload"], DATA["signature"]))
    side = (len(matrix) + 8) * 6  # 6 dots a module on 80 mm, 4 quiet modules each side
    qr = [img for img in out.images if img.height == side]
    assert len(qr) == 1
    seen = [[qr[0].dot((x + 4) * 6 + 3, (y + 4) * 6 + 3) for x in range(len(matrix))] for y in range(len(matrix))]
    assert seen == matrix


@pytest.mark.parametrize("profile,columns", [("80mm", 48), ("58mm", 32)])
def test_lines_fit_the_paper_width(profile: str, columns: int) -> None:
    long = dict(DATA, lines=[["地址", "山东省济南市历下区泉城路188号3单元502室 Building 3 Unit 502 Quancheng Road"]])
    out = decode(render_receipt("transaction", long, profile=profile))
    assert max(text_columns(line) for line in out.lines if not line.startswith("\x00")) <= columns
    assert "".join(out.lines).count("泉城路188号") == 1


@pytest.mark.parametrize("kind", ["transaction", "appointment", "payment", "test"])
def test_every_kind_prints_its_title_terminal_and_cut(kind: str) -> None:
    out = decode(render_receipt(kind, DATA))
    titles = {"transaction": "业务办理凭条", "appointment": "预约凭条", "payment": "缴费凭证",
              "test": "自助终端打印测试"}
    assert titles[kind] in out.lines
    assert "终端编号：JN-TEST-0007" in out.lines
    assert out.cuts == 1 and len(out.qr_codes) == 1


def test_test_page_has_its_own_qr_without_a_payload() -> None:
    out = decode(render_receipt("test", {"terminal_id": "JN-TEST-0007", "time": "2026-11-29 12:00:00"}))
    assert out.qr_codes == ("KIOSK-PRINT-TEST|JN-TEST-0007|2026-11-29 12:00:00",)


def test_unknown_kind_and_profile_are_refused() -> None:
    with pytest.raises(ReceiptInvalid):
        render_receipt("invoice", DATA)
    with pytest.raises(ReceiptInvalid):
        render_receipt("transaction", DATA, profile="110mm")
    with pytest.raises(ReceiptInvalid):
        get_profile("80mm:utf8")


def test_profile_spec_round_trips() -> None:
    p = get_profile("58mm:raster:raster")
    assert (p.width_dots, p.columns, p.chinese_mode, p.qr_mode) == (384, 32, "raster", "raster")
    assert get_profile(p.spec) == p


GBK_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from("，。：；（）【】“”《》！？、"),
                       st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
                       st.characters(min_codepoint=0x21, max_codepoint=0x7E)),
    min_size=1, max_size=120)


@settings(max_examples=80, deadline=None)
@given(GBK_TEXT)
def test_any_gbk_text_round_trips_through_fs_and_mode(text: str) -> None:
    text = "".join(c for c in text if len(c.encode("gb18030")) <= 2)
    if not text:
        text = "中"
    enc = EscposEncoder("58mm").init()
    enc.text(text)
    out = decode(enc.bytes())
    assert out.images == ()
    assert "".join(out.lines) == text
    assert all(text_columns(line) <= 32 for line in out.lines)
