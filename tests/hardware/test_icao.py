"""ICAO 9303 pieces against the specification's worked examples (9303-11 Appendix D) and hand-written bytes."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from kiosk.errors import BacFailed, ConfigError, DeviceError, DeviceProtocolError, FieldError
from kiosk.hardware.icao import bac, lds, pa
from kiosk.hardware.icao.bac import SessionKeys
from kiosk.hardware.icao.crypto import pad, unpad
from kiosk.hardware.icao.mrz import bac_seed_input, check_digit, parse_mrz, yymmdd_to_iso
from kiosk.hardware.icao.sm import ChipChannel, SecureChannel, SecureMessagingError, parse_apdu
from kiosk.hardware.simulators.vicc import DEMO_DOCUMENTS, TestPki

H = bytes.fromhex

# 9303-11 Appendix D worked example
RND_IC, RND_IFD = H("4608F91988702212"), H("781723860C06C226")
K_IFD = H("0B795240CB7049B01C19B33E32804F0B")
KS_ENC, KS_MAC = H("979EC13B1CBFE9DCD01AB0FED307EAE5"), H("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC0 = H("887022120C06C226")


# --- MRZ -------------------------------------------------------------------------------
@pytest.mark.parametrize("field, digit", [("L898902C<", "3"), ("690806", "1"), ("940623", "6"),
                                          ("D23145890", "7"), ("740812", "2"), ("120415", "9")])
def test_check_digits_of_the_specimens(field, digit):
    assert check_digit(field) == digit


def test_bac_seed_input_of_the_specimen():
    assert bac_seed_input("L898902C<", "690806", "940623") == "L898902C<369080619406236"
    assert bac_seed_input("l898902c", "690806", "940623") == "L898902C<369080619406236"


def test_bac_seed_input_rejects_bad_dates():
    with pytest.raises(FieldError):
        bac_seed_input("L898902C", "69086", "940623")


def test_td3_specimen_parses_with_valid_checks():
    mrz = parse_mrz("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
                    "L898902C<3UTO6908061F9406236ZE184226B<<<<<14")
    assert (mrz.document_code, mrz.issuing_state, mrz.surname, mrz.given_names) == \
        ("P", "UTO", "ERIKSSON", "ANNA MARIA")
    assert (mrz.document_number, mrz.nationality, mrz.birth_date, mrz.sex, mrz.expiry_date) == \
        ("L898902C", "UTO", "690806", "female", "940623")
    assert mrz.optional_data == "ZE184226B" and mrz.checks_ok


def test_td3_with_a_wrong_check_digit_is_flagged():
    mrz = parse_mrz("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
                    "L898902C<4UTO6908061F9406236ZE184226B<<<<<14")
    assert not mrz.checks_ok


def test_td1_specimen_parses():
    mrz = parse_mrz("I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\n"
                    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
    assert (mrz.document_code, mrz.document_number, mrz.birth_date, mrz.expiry_date) == \
        ("I", "D23145890", "740812", "120415")
    assert mrz.given_names == "ANNA MARIA" and mrz.checks_ok


def test_demo_document_mrz_matches_the_specimen_line():
    assert DEMO_DOCUMENTS[0].mrz()[44:] == "L898902C<3UTO6908061F9406236ZE184226B<<<<<14"


def test_two_digit_years():
    assert yymmdd_to_iso("690806", today_year=2026) == "1969-08-06"
    assert yymmdd_to_iso("940623", future=True, today_year=2026) == "1994-06-23"
    assert yymmdd_to_iso("320101", future=True, today_year=2026) == "2032-01-01"
    assert yymmdd_to_iso("100101", today_year=2026) == "2010-01-01"


# --- BAC ------------------------------------------------------------------------------------
def test_bac_keys_of_the_worked_example():
    keys = bac.derive_bac_keys("L898902C<", "690806", "940623")
    assert keys.seed == H("239AB9CB282DAF66231DC5A4DF6BFBAE")
    assert keys.enc == H("AB94FDECF2674FDFB9B391F85D7F76F2")
    assert keys.mac == H("7962D9ECE03D1ACD4C76089DCE131543")
    assert "AB94" not in repr(keys)


def test_mutual_authenticate_data_of_the_worked_example():
    keys = bac.derive_bac_keys("L898902C<", "690806", "940623")
    assert bac.authenticate_command(keys, RND_IC, RND_IFD, K_IFD) == H(
        "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2" "5F1448EEA8AD90A7")


def test_chip_answer_and_session_keys_of_the_worked_example():
    keys = bac.derive_bac_keys("L898902C<", "690806", "940623")
    answer = H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F" "2F2D235D074D7449")
    k_ic = bac.check_authenticate_response(keys, answer, RND_IFD)
    assert k_ic == H("0B4F80323EB3191CB04970CB4052790B")
    session = bac.session_keys(K_IFD, k_ic, RND_IC, RND_IFD)
    assert (session.enc, session.mac, session.ssc) == (KS_ENC, KS_MAC, SSC0)


def test_mutual_authenticate_over_a_scripted_transmit():
    keys = bac.derive_bac_keys("L898902C<", "690806", "940623")
    answer = H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F" "2F2D235D074D7449")
    sent = []

    def transmit(apdu):
        sent.append(apdu)
        return (RND_IC, 0x9000) if apdu[1] == 0x84 else (answer, 0x9000)

    randoms = iter([RND_IFD, K_IFD])
    session = bac.mutual_authenticate(transmit, keys, rng=lambda n: next(randoms))
    assert sent[0] == H("0084000008")
    assert sent[1] == H("0082000028" "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2"
                        "5F1448EEA8AD90A7" "28")
    assert session.ssc == SSC0


def test_wrong_keys_fail_bac():
    keys = bac.derive_bac_keys("L898902C<", "690806", "940624")
    answer = H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F" "2F2D235D074D7449")
    with pytest.raises(BacFailed) as err:
        bac.check_authenticate_response(keys, answer, RND_IFD)
    assert err.value.code == "bac_failed"
    with pytest.raises(BacFailed):
        bac.mutual_authenticate(lambda a: (RND_IC, 0x9000) if a[1] == 0x84 else (b"", 0x6300), keys)


# --- secure messaging -------------------------------------------------------------------------
def _session() -> SessionKeys:
    return SessionKeys(KS_ENC, KS_MAC, SSC0)


def test_secure_messaging_worked_example_select_and_read_ef_com():
    ch = SecureChannel(_session())
    assert ch.protect(H("00A4020C02011E")) == H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800")
    assert ch.ssc_bytes == H("887022120C06C227")
    assert ch.unprotect(H("990290008E08FA855A5D4C50A8ED9000")) == (b"", 0x9000)
    assert ch.protect(H("00B0000004")) == H("0CB000000D9701048E08ED6705417E96BA5500")
    assert ch.unprotect(H("8709019FF0EC34F9922651" "99029000" "8E08AD55CC17140B2DED" "9000")) == \
        (H("60145F01"), 0x9000)
    assert ch.protect(H("00B0000412")) == H("0CB000040D9701128E082EA28A70F3C7B53500")
    data, sw = ch.unprotect(H("871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A"
                              "99029000" "8E08C8B2787EAEA07D74" "9000"))
    assert (data, sw) == (H("04303130365F36063034303030305C026175"), 0x9000)
    assert ch.ssc_bytes == H("887022120C06C22C")


def test_chip_side_of_the_worked_example():
    chip = ChipChannel(_session())
    cmd = chip.unprotect(H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"))
    assert cmd.to_bytes() == H("00A4020C02011E")
    assert chip.protect(b"", 0x9000) == H("990290008E08FA855A5D4C50A8ED9000")


def test_tampered_answer_mac_is_rejected():
    ch = SecureChannel(_session())
    ch.protect(H("00A4020C02011E"))
    with pytest.raises(SecureMessagingError):
        ch.unprotect(H("990290008E08FA855A5D4C50A8EE9000"))  # last MAC byte changed


def test_ssc_stays_eight_bytes_across_the_wrap():
    ch = SecureChannel(SessionKeys(KS_ENC, KS_MAC, H("FFFFFFFFFFFFFFFF")))
    chip = ChipChannel(SessionKeys(KS_ENC, KS_MAC, H("FFFFFFFFFFFFFFFF")))
    protected = ch.protect(H("00B0000004"))
    assert ch.ssc_bytes == bytes(8)
    assert chip.unprotect(protected).le == 4
    assert ch.unprotect(chip.protect(b"\x01\x02\x03\x04", 0x9000)) == (H("01020304"), 0x9000)
    assert ch.ssc_bytes == H("0000000000000001")


def test_padding_method_2():
    assert pad(b"") == H("8000000000000000")
    assert pad(H("01020304050607")) == H("0102030405060780")
    assert unpad(H("011E800000000000")) == H("011E")
    with pytest.raises(ValueError):
        unpad(H("0000000000000000"))


def test_apdu_cases():
    assert parse_apdu(H("00840000 08".replace(" ", ""))).le == 8
    c = parse_apdu(H("00A4020C02011E"))
    assert (c.data, c.le) == (H("011E"), None)
    c = parse_apdu(H("0082000028" + "00" * 40 + "28"))
    assert (len(c.data), c.le) == (40, 0x28)
    with pytest.raises(SecureMessagingError):
        parse_apdu(H("00A4020C05011E"))


# --- TLV and the LDS files -------------------------------------------------------------------
def test_ef_com_of_the_worked_example():
    com = lds.parse_ef_com(H("60145F0104303130365F36063034303030305C026175"))
    assert (com.lds_version, com.unicode_version, com.data_groups) == ("0106", "040000", (1, 2))


def test_tlv_lengths_short_and_long():
    element, end = lds.read_tlv(H("5F1F03414243FF"))
    assert (element.tag, element.value, end) == (0x5F1F, b"ABC", 6)
    element, _ = lds.read_tlv(H("7781") + bytes([0x80]) + bytes(0x80))
    assert element.tag == 0x77 and len(element.value) == 0x80
    element, _ = lds.read_tlv(H("75820100") + bytes(0x100))
    assert len(element.value) == 0x100 and element.constructed
    assert lds.total_length(H("77820100")) == 0x104
    assert lds.total_length(H("6114")) == 0x16
    assert lds.total_length(H("7F610300")) == 6


@pytest.mark.parametrize("raw", ["5F", "5F1F", "5F1F05414243", "618500", "7F", "0184414141"])
def test_tlv_truncations_are_protocol_errors(raw):
    with pytest.raises(DeviceProtocolError):
        lds.parse_tlvs(H(raw))


def test_dg1_holding_the_specimen_mrz():
    mrz = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C<3UTO6908061F9406236ZE184226B<<<<<14"
    dg1 = H("615B5F1F58") + mrz.encode()
    assert lds.parse_dg1(dg1).document_number == "L898902C"


def test_dg2_with_a_hand_written_19794_record():
    jpeg = H("FFD8FFE000104A464946") + b"rest"
    record = (b"FAC\x00" b"010\x00" + (14 + 20 + 12 + len(jpeg)).to_bytes(4, "big") + H("0001")
              + (20 + 12 + len(jpeg)).to_bytes(4, "big") + H("0000") + bytes(14)
              + H("0100" "00F0" "0140" "000000000000") + jpeg)
    bht = H("A10C" "80020101" "87020101" "88020008")
    template = H("7F60") + bytes([len(bht) + 3 + len(record)]) + bht + H("5F2E") + bytes([len(record)]) + record
    inner = H("020101") + template
    dg2 = H("75") + bytes([len(inner) + 3]) + H("7F61") + bytes([len(inner)]) + inner
    face = lds.parse_dg2(dg2)
    assert (face.format, face.image, face.count) == ("jpeg", jpeg, 1)
    assert lds.parse_dg2(lds.build_dg2(jpeg, 240, 320)).image == jpeg


# --- passive authentication ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki():
    return TestPki()


def test_passive_authentication_passes_with_the_right_csca(pki):
    groups = {1: lds.build_dg1(DEMO_DOCUMENTS[0].mrz()), 2: b"\x75\x01\x00"}
    sod = pki.build_sod(groups)
    parsed = pa.parse_sod(sod)
    assert parsed.hashes[1] == hashlib.sha256(groups[1]).digest()
    result = pa.verify(sod, groups, [pki.csca_cert])
    assert (result.sod_present, result.hashes_valid, result.chain_valid) == (True, True, True)
    assert pa.verify(sod, groups).chain_valid is None


def test_passive_authentication_catches_a_changed_group_and_a_foreign_csca(pki):
    groups = {1: lds.build_dg1(DEMO_DOCUMENTS[0].mrz()), 2: b"\x75\x01\x00"}
    sod = pki.build_sod(groups)
    changed = {1: groups[1][:-1] + b"<", 2: groups[2]}
    result = pa.verify(sod, changed, [pki.csca_cert])
    assert result.hashes_valid is False and result.failed_groups == (1,)
    assert pa.verify(sod, groups, [TestPki().csca_cert]).chain_valid is False


def test_passive_authentication_checks_the_validity_periods(pki):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    groups = {1: lds.build_dg1(DEMO_DOCUMENTS[0].mrz()), 2: b"\x75\x01\x00"}
    sod = pki.build_sod(groups)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert pa.verify(sod, groups, [pki.csca_cert], at=now).chain_valid is True
    late = pa.verify(sod, groups, [pki.csca_cert], at=now + datetime.timedelta(days=400))  # DS: 365 days
    early = pa.verify(sod, groups, [pki.csca_cert], at=now - datetime.timedelta(days=10))
    for result in (late, early):
        assert result.hashes_valid is True and result.chain_valid is False
        assert "validity" in result.detail
    # A document signer certificate dated before its CSCA existed.
    odd = TestPki()
    csca_start = odd.csca_cert.not_valid_before_utc
    odd.ds_cert = (x509.CertificateBuilder().subject_name(odd.ds_cert.subject).issuer_name(odd.csca_cert.subject)
                   .public_key(odd.ds_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(csca_start - datetime.timedelta(days=30))
                   .not_valid_after(now + datetime.timedelta(days=365))
                   .sign(odd.csca_key, hashes.SHA256()))
    result = pa.verify(odd.build_sod(groups), groups, [odd.csca_cert], at=now)
    assert result.chain_valid is False and "CSCA was not valid" in result.detail


def test_passive_authentication_without_sod():
    assert pa.verify(None, {1: b"x"}).to_dict() == {"sod_present": False, "hashes_valid": None,
                                                    "chain_valid": None}


def test_trust_store_loads_pem_folder(pki, tmp_path):
    (tmp_path / "a.pem").write_bytes(pki.csca_pem())
    (tmp_path / "notes.txt").write_text("not a certificate")
    assert pa.load_trust_store(tmp_path)[0].subject == pki.csca_cert.subject


def test_missing_or_empty_trust_store_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        pa.load_trust_store(tmp_path / "nowhere")
    with pytest.raises(ConfigError):
        pa.load_trust_store(tmp_path)


def test_reprs_keep_personal_data_out():
    mrz = parse_mrz("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
                    "L898902C<3UTO6908061F9406236ZE184226B<<<<<14")
    face = lds.FaceImage("jpeg", b"\xff\xd8secret", 1)
    assert "ERIKSSON" not in repr(mrz) and "L898902C" not in repr(mrz) and "secret" not in repr(face)


# --- garbage never escapes as anything but a typed error --------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_tlv_and_lds_parsers_on_garbage(data):
    for parser in (lds.parse_tlvs, lds.parse_ef_com, lds.parse_dg1, lds.parse_dg2, pa.parse_sod,
                   lds.total_length):
        try:
            parser(data)
        except DeviceProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0x60, 0x61, 0x75, 0x77]), st.binary(max_size=120))
def test_lds_parsers_on_garbage_behind_a_valid_tag(tag, body):
    data = lds.tlv(tag, body)
    for parser in (lds.parse_ef_com, lds.parse_dg1, lds.parse_dg2, pa.parse_sod):
        try:
            parser(data)
        except DeviceProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_sm_unprotect_on_garbage(data):
    try:
        SecureChannel(_session()).unprotect(data)
    except DeviceProtocolError:
        pass
    try:
        ChipChannel(_session()).unprotect(data)
    except DeviceProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([H("87"), H("8709"), H("01"), H("99029000"), H("8E08"), H("9000"),
                                 bytes(8), H("FF")]), max_size=8))
def test_sm_unprotect_on_plausible_fragments(parts):
    try:
        SecureChannel(_session()).unprotect(b"".join(parts))
    except DeviceProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<", min_size=0, max_size=95))
def test_mrz_parser_on_garbage(text):
    try:
        parse_mrz(text)
    except DeviceError:
        pass


def _line(width: int) -> st.SearchStrategy[str]:
    """A scanner's misread line: mostly fillers and digits, so the layouts' corner cases come up often."""
    return st.lists(st.sampled_from("<<<<<<0123456789AIPZ"), min_size=width, max_size=width).map("".join)


def test_td1_long_number_marker_without_the_number_is_a_typed_error():
    # '<' at positions 14 and 15: "the number goes on in the optional data", which then starts empty
    text = "I<UTOD23145890<<7349<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
    with pytest.raises(DeviceProtocolError):
        parse_mrz(text)


def test_td1_long_document_number_of_the_specification():
    mrz = parse_mrz("I<UTOD23145890<7349<<<<<<<<<<<\n3407127M9507122UTO<<<<<<<<<<<2\nSTEVENSON<<PETER<JOHN<<<<<<<<<")
    assert mrz.document_number == "D23145890734" and mrz.optional_data == ""


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(_line(30), _line(30), _line(30)).map("\n".join),
                 st.tuples(_line(44), _line(44)).map("\n".join)))
def test_mrz_parser_on_mrz_shaped_misreads_raises_only_its_typed_error(text):
    try:
        mrz = parse_mrz(text)
    except DeviceProtocolError:
        return
    assert len(mrz.birth_date) == 6 and len(mrz.expiry_date) == 6 and isinstance(mrz.checks_ok, bool)


def _td1(number: str, birth: str, expiry: str, optional: str) -> str:
    if len(number) <= 9:
        field, opt1 = number.ljust(9, "<") + check_digit(number.ljust(9, "<")), optional.ljust(15, "<")
    else:  # 9303-5: nine characters, a filler, then the rest and the check digit in the optional data
        field = number[:9] + "<"
        opt1 = (number[9:] + check_digit(number) + "<" + optional).ljust(15, "<")
    l1 = "I<UTO" + field + opt1
    l2 = birth + check_digit(birth) + "F" + expiry + check_digit(expiry) + "UTO" + "<" * 11
    l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    return "\n".join((l1, l2, "ERIKSSON<<ANNA<MARIA".ljust(30, "<")))


_DATE = st.tuples(st.integers(0, 99), st.integers(1, 12), st.integers(1, 28)).map(
    lambda t: f"{t[0]:02d}{t[1]:02d}{t[2]:02d}")
_NUMBER = st.text(alphabet="0123456789ABCDEFGHJKLMNPRSTUVWXYZ", min_size=1, max_size=13)


@settings(max_examples=200, deadline=None)
@given(_NUMBER, _DATE, _DATE, st.text(alphabet="0123456789ABC", max_size=3))
def test_td1_built_with_its_check_digits_parses_back(number, birth, expiry, optional):
    mrz = parse_mrz(_td1(number, birth, expiry, optional if len(number) <= 9 else ""))
    assert (mrz.document_number, mrz.birth_date, mrz.expiry_date) == (number, birth, expiry)
    assert mrz.checks_ok


def test_keyed_access_data_takes_what_residents_read_off_the_page():
    import datetime as dt

    from kiosk.hardware.icao.mrz import keyed_access_data

    today = dt.date(2026, 11, 29)
    assert keyed_access_data(" c1234 5678 ", "19850315", "20330630", today=today) == ("C12345678", "850315", "330630")
    assert keyed_access_data("C12345678", "1985-03-15", "330630", today=today) == ("C12345678", "850315", "330630")
    # Six-digit birth dates: a year after this one is last century.
    assert keyed_access_data("C12345678", "270101", "300101", today=today)[1] == "270101"
    assert keyed_access_data("C12345678", "200101", "300101", today=today)[1] == "200101"
    # An expired document is for the chip's dates to refuse, not the entry screen.
    assert keyed_access_data("C12345678", "19850315", "20200101", today=today)[2] == "200101"


@pytest.mark.parametrize("number, birth, expiry, field", [
    ("", "19850315", "20330630", "document_number"),
    ("C12", "19850315", "20330630", "document_number"),
    ("C1234567*", "19850315", "20330630", "document_number"),
    ("C123456789012345678901", "19850315", "20330630", "document_number"),
    ("C12345678", "1985031", "20330630", "birth_date"),
    ("C12345678", "19850230", "20330630", "birth_date"),
    ("C12345678", "20270101", "20330630", "birth_date"),  # not born yet
    ("C12345678", "18991231", "20330630", "birth_date"),
    ("C12345678", "19850315", "2033063O", "expiry_date"),
    ("C12345678", "19850315", "20331301", "expiry_date"),
])
def test_keyed_access_data_names_the_entry_to_fix(number, birth, expiry, field):
    import datetime as dt

    from kiosk.hardware.icao.mrz import keyed_access_data

    with pytest.raises(FieldError) as err:
        keyed_access_data(number, birth, expiry, today=dt.date(2026, 11, 29))
    assert err.value.field == field
    assert err.value.message("zh_CN") != err.value.message("en")  # the resident reads it in Chinese
