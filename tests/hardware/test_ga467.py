"""GA 467 codec and text blocks against frames and blocks written out by hand from the field table."""
from __future__ import annotations

import functools
import operator

import pytest
from hypothesis import given, settings, strategies as st

from kiosk.errors import DeviceError, DeviceProtocolError, NoCard, SamRejected, UnknownCardType, \
    CardAuthFailed, CardNoContent, SamNotReady, CardReadFailed, SamError
from kiosk.hardware import ga467

H = bytes.fromhex


# --- frames written out by hand ------------------------------------------------------------
@pytest.mark.parametrize("command, frame", [
    (ga467.Command.FIND_CARD, "AA AA AA 96 69 00 03 20 01 22"),
    (ga467.Command.SELECT_CARD, "AA AA AA 96 69 00 03 20 02 21"),
    (ga467.Command.READ_BASE_INFO, "AA AA AA 96 69 00 03 30 01 32"),
    (ga467.Command.READ_BASE_INFO_FINGERPRINT, "AA AA AA 96 69 00 03 30 10 23"),
    (ga467.Command.READ_APPENDED_ADDRESS, "AA AA AA 96 69 00 03 30 03 30"),
    (ga467.Command.RESET_SAM, "AA AA AA 96 69 00 03 10 FF EC"),
    (ga467.Command.SAM_STATUS, "AA AA AA 96 69 00 03 11 FF ED"),
    (ga467.Command.SAM_ID, "AA AA AA 96 69 00 03 12 FF EE"),
])
def test_command_frames_match_the_hand_written_bytes(command, frame):
    assert ga467.encode_command(command) == H(frame)


def test_find_card_answers_decode():
    found = ga467.parse_response(ga467.decode_frame(H("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")))
    assert (found.sw3, found.data, found.ok) == (0x9F, bytes(4), True)
    none = ga467.parse_response(ga467.decode_frame(H("AA AA AA 96 69 00 04 00 00 80 84")))
    assert none.sw3 == 0x80 and not none.ok
    with pytest.raises(NoCard):
        ga467.check(none)


def test_select_answer_decodes():
    body = ga467.decode_frame(H("AA AA AA 96 69 00 0C 00 00 90" + " 00" * 8 + " 9C"))
    assert ga467.parse_response(body) == ga467.Response(0, 0, 0x90, bytes(8))


def test_bad_checksum_is_a_protocol_error():
    with pytest.raises(DeviceProtocolError):
        ga467.decode_frame(H("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 98"))


def test_truncated_frame_is_a_protocol_error():
    with pytest.raises(DeviceProtocolError):
        ga467.decode_frame(H("AA AA AA 96 69 00 08 00 00 9F 00"))


def test_decoder_resyncs_after_garbage_and_across_partial_reads():
    frame = H("AA AA AA 96 69 00 04 00 00 80 84")
    decoder = ga467.FrameDecoder()
    stream = H("00 AA 96 AA AA") + frame + frame
    bodies = []
    for i in range(0, len(stream), 3):  # three bytes at a time, as a slow port delivers them
        decoder.feed(stream[i:i + 3])
        while (body := decoder.next_body()) is not None:
            bodies.append(body)
    assert bodies == [H("00 00 80")] * 2
    assert decoder.skipped == 5


def test_decoder_keeps_a_split_preamble():
    decoder = ga467.FrameDecoder()
    decoder.feed(H("11 22 AA AA"))
    assert decoder.next_body() is None
    decoder.feed(H("AA 96 69 00 04 00 00 80 84"))
    assert decoder.next_body() == H("00 00 80")


@pytest.mark.parametrize("sw3, cls", [
    (0x10, SamRejected), (0x11, SamRejected), (0x21, SamRejected), (0x31, CardAuthFailed),
    (0x32, CardAuthFailed), (0x33, CardAuthFailed), (0x40, UnknownCardType), (0x41, CardReadFailed),
    (0x60, SamNotReady), (0x80, NoCard), (0x81, NoCard), (0x91, CardNoContent), (0x55, SamError),
])
def test_every_failure_status_maps_to_a_typed_error(sw3, cls):
    err = ga467.status_error(sw3)
    assert type(err) is cls and err.context["sw3"] == sw3 and err.code


# --- text blocks built by hand from the byte widths of the field table ------------------
def _block(fields: list[tuple[str, int]]) -> bytes:
    """Fields with their byte widths, UCS-2 little-endian, space padded."""
    out = b""
    for value, width in fields:
        raw = value.encode("utf-16-le")
        assert len(raw) <= width
        out += raw + " ".encode("utf-16-le") * ((width - len(raw)) // 2)
    assert len(out) == 256
    return out


RESIDENT = _block([("张三", 30), ("1", 2), ("03", 4), ("19491231", 16),
                   ("北京市东城区景山前街4号", 70), ("11010519491231002X", 36),
                   ("北京市公安局东城分局", 30), ("20100101", 16), ("长期", 16), ("", 36)])


def test_resident_text_block():
    card = ga467.parse_text_block(RESIDENT, b"WLf")
    assert (card.card_type, card.name, card.sex, card.ethnicity, card.ethnicity_code) == \
        ("resident", "张三", "male", "回", "03")
    assert (card.birth_date, card.valid_from, card.valid_to) == ("1949-12-31", "2010-01-01", "long-term")
    assert card.address == "北京市东城区景山前街4号" and card.issuer == "北京市公安局东城分局"
    assert card.id_number == "11010519491231002X" and card.photo == b"WLf"


def test_resident_block_with_fixed_end_date_and_female():
    block = _block([("李四", 30), ("2", 2), ("11", 4), ("19800101", 16), ("济南", 70),
                    ("440524188001010014", 36), ("济南", 30), ("20200101", 16), ("20400101", 16),
                    ("", 36)])
    card = ga467.parse_text_block(block)
    assert (card.sex, card.ethnicity, card.valid_to) == ("female", "满", "2040-01-01")


def test_foreign_permanent_resident_block_2017_layout():
    block = _block([("SMITH JOHN", 120), ("1", 2), ("USA110085061703", 30), ("USA", 6),
                    ("史密斯", 30), ("20170601", 16), ("20270601", 16), ("19850801", 16),
                    ("02", 4), ("1100", 8), ("I", 2), ("", 6)])
    card = ga467.parse_text_block(block)
    assert card.card_type == "foreign_permanent"
    assert (card.name, card.id_number, card.birth_date) == ("史密斯", "USA110085061703", "1985-08-01")
    assert card.extra == {"name_en": "SMITH JOHN", "nationality": "USA", "card_version": "02",
                          "issuer_code": "1100"}


def test_hong_kong_macau_taiwan_residence_permit_block():
    # 810000199001010019: check character 9 worked by hand (weighted sum 146, 146 mod 11 = 3)
    block = _block([("陈大文", 30), ("1", 2), ("", 4), ("19900101", 16), ("深圳", 70),
                    ("810000199001010019", 36), ("深圳市公安局", 30), ("20180901", 16),
                    ("20230901", 16), ("H12345678", 18), ("03", 4), ("", 6), ("J", 2), ("", 6)])
    card = ga467.parse_text_block(block)
    assert card.card_type == "hkmt_residence" and card.name == "陈大文"
    assert card.id_number == "810000199001010019" and card.address == "深圳"
    assert card.extra == {"pass_number": "H12345678", "issue_count": "3"}


def test_unknown_card_type_letter():
    block = bytearray(RESIDENT)
    block[248:250] = "Z".encode("utf-16-le")
    with pytest.raises(UnknownCardType):
        ga467.parse_text_block(bytes(block))


def test_encoder_reproduces_the_hand_built_block():
    card = ga467.parse_text_block(RESIDENT)
    assert ga467.encode_text_block(card) == RESIDENT


def test_base_info_of_1295_byte_frame():
    photo = bytes(range(256)) * 4
    data = H("01 00 04 00") + RESIDENT + photo
    frame = H("AA AA AA 96 69 05 08 00 00 90") + data
    frame += bytes([functools.reduce(operator.xor, frame[5:], 0)])
    assert len(frame) == 1295
    response = ga467.parse_response(ga467.decode_frame(frame))
    base = ga467.split_base_info(response.data)
    assert base.text == RESIDENT and base.photo == photo


def test_base_info_with_fingerprint_lengths():
    data = H("01 00 04 00 04 00") + RESIDENT + bytes(1024) + b"\x01" * 1024
    base = ga467.split_base_info(data, with_fingerprint=True)
    assert base.fingerprint == b"\x01" * 1024
    with pytest.raises(DeviceProtocolError):
        ga467.split_base_info(data[:-1], with_fingerprint=True)


def test_ethnicity_table_has_56_nationalities_plus_97_and_98():
    assert len(ga467.ETHNICITIES) == 58
    assert [f"{i:02d}" for i in range(1, 57)] + ["97", "98"] == list(ga467.ETHNICITIES)
    assert (ga467.ETHNICITIES["01"], ga467.ETHNICITIES["56"], ga467.ETHNICITIES["04"]) == ("汉", "基诺", "藏")


# --- GB 11643 ------------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014", "11010519491231002x"])
def test_gb11643_accepts_published_examples(number):
    assert ga467.is_valid_id_number(number)


@pytest.mark.parametrize("number", ["110105194912310021", "440524188001010015", "1101051949123100", "A1010519491231002X"])
def test_gb11643_rejects_wrong_check_characters(number):
    assert not ga467.is_valid_id_number(number)


def test_gb11643_check_character():
    assert ga467.id_check_character("11010519491231002") == "X"
    assert ga467.id_check_character("44052418800101001") == "4"


def test_photo_decoder_plug_in_point():
    assert ga467.decode_photo(b"WLf") is None
    ga467.register_photo_decoder(lambda wlt: b"BM" + wlt)
    try:
        assert ga467.decode_photo(b"WLf") == b"BMWLf"
    finally:
        ga467.register_photo_decoder(None)


# --- garbage never escapes as anything but a typed error -------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_decoder_on_garbage_yields_bodies_or_protocol_errors(chunks):
    decoder = ga467.FrameDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
        for _ in range(10):
            try:
                body = decoder.next_body()
            except DeviceProtocolError:
                continue
            if body is None:
                break
            assert isinstance(body, bytes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.binary(min_size=3, max_size=40))
def test_decoder_finds_a_frame_behind_preamble_free_garbage(garbage, body):
    garbage = garbage.replace(b"\xAA", b"\x00")
    decoder = ga467.FrameDecoder()
    decoder.feed(garbage + ga467.encode_frame(body))
    assert decoder.next_body() == body


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=256, max_size=256))
def test_text_parser_on_garbage_raises_only_device_errors(block):
    try:
        card = ga467.parse_text_block(block)
    except DeviceError:
        return
    assert card.card_type in ("resident", "foreign_permanent", "hkmt_residence")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=128, max_size=128, alphabet=st.sampled_from(list("0123456789 长期XIJ张三"))))
def test_text_parser_on_plausible_characters_raises_only_device_errors(text):
    try:
        ga467.parse_text_block(text.encode("utf-16-le"))
    except DeviceError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2100), st.booleans())
def test_base_info_split_on_garbage(data, finger):
    try:
        ga467.split_base_info(data, with_fingerprint=finger)
    except DeviceProtocolError:
        pass
