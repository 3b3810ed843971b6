"""PcscChipReader through a real pcscd + vpcd with the project's virtual chip."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.errors import BacFailed, CardRemoved, DeviceOffline, NoCard, NoDevice
from kiosk.hardware.pcsc_reader import PcscChipReader, list_readers
from kiosk.hardware.simulators.vicc import DEMO_DOCUMENTS, VirtualChip, VpcdChip

from pcsc_fixtures import chip, pcscd, pki, trust_store, wait_card  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SPECIMEN = ("L898902C<", "690806", "940623")


def _reader(trust_store=None, **options) -> PcscChipReader:
    opts = {"reader": "Virtual PCD", "poll_interval": 0.05, **options}
    if trust_store is not None:
        opts["trust_store"] = str(trust_store)
    return PcscChipReader("pcsc", opts)


def test_readers_are_listed_with_the_card(chip):
    readers = {r.name: r for r in list_readers()}
    slot = next(r for name, r in readers.items() if name.startswith("Virtual PCD") and name.endswith("00 00"))
    assert slot.card_present and slot.atr == "3B80800101"


def test_reads_the_specimen_with_bac_and_passive_authentication(chip, trust_store):
    reader = _reader(trust_store)
    doc = reader.read_chip(*SPECIMEN, timeout=5)
    data = doc.to_dict()
    assert data == {
        "document_code": "P", "issuing_state": "UTO", "surname": "ERIKSSON", "given_names": "ANNA MARIA",
        "document_number": "L898902C", "nationality": "UTO", "birth_date": "1969-08-06", "sex": "female",
        "expiry_date": "1994-06-23", "data_groups": [1, 2],
        "passive_authentication": {"sod_present": True, "hashes_valid": True, "chain_valid": True},
    }
    assert doc.face is not None and doc.face.format == "jpeg" and doc.face.image.startswith(b"\xFF\xD8")
    # on the wire: SELECT AID, GET CHALLENGE, MUTUAL AUTHENTICATE in clear, then only SM (CLA 0C)
    seen = chip.chip.apdus
    assert seen[0][:4] == bytes.fromhex("00A4040C") and seen[1] == bytes.fromhex("0084000008")
    assert seen[2][:5] == bytes.fromhex("0082000028")
    assert seen[3:] and all(apdu[0] == 0x0C for apdu in seen[3:])
    assert doc.apdu_count == len(seen)
    card = reader.read_document(*SPECIMEN, timeout=5)
    assert (card.card_type, card.name, card.id_number, card.valid_to) == \
        ("passport", "ANNA MARIA ERIKSSON", "L898902C", "1994-06-23")
    # What the chip proved travels with the identity, for the identify step to judge.
    assert {k: card.extra[k] for k in ("sod_present", "hashes_valid", "chain_valid", "dg1_document_number",
                                       "dg1_birth_date", "dg1_expiry_date")} == {
        "sod_present": "true", "hashes_valid": "true", "chain_valid": "true",
        "dg1_document_number": "L898902C", "dg1_birth_date": "690806", "dg1_expiry_date": "940623"}
    reader.close()


def test_without_trust_store_the_chain_is_not_judged(chip):
    doc = _reader().read_chip(*SPECIMEN, timeout=5)
    assert doc.passive_authentication.to_dict() == {"sod_present": True, "hashes_valid": True,
                                                   "chain_valid": None}


def test_wrong_mrz_data_is_bac_failed(chip):
    with pytest.raises(BacFailed) as err:
        _reader().read_chip("L898902C<", "690806", "940624", timeout=5)
    assert err.value.code == "bac_failed"
    assert _reader().read_chip(*SPECIMEN, timeout=5).mrz.surname == "ERIKSSON"  # the chip recovers


def test_changed_data_group_fails_the_hashes(chip, trust_store):
    chip.chip.inject("tamper_dg", 2)
    doc = _reader(trust_store).read_chip(*SPECIMEN, timeout=5)
    assert doc.passive_authentication.hashes_valid is False
    assert doc.passive_authentication.failed_groups == (2,)


def test_card_pulled_mid_read_is_card_removed_and_the_next_read_works(chip):
    chip.chip.inject("pull_after_reads", 10)
    with pytest.raises(CardRemoved):
        _reader().read_chip(*SPECIMEN, timeout=5)
    wait_card(False)
    chip.insert()
    wait_card(True)
    assert _reader().read_chip(*SPECIMEN, timeout=5).mrz.document_number == "L898902C"


def test_no_card_and_no_reader(pcscd):
    wait_card(False)
    with pytest.raises(NoCard):
        _reader().read_chip(*SPECIMEN, timeout=0.3)
    with pytest.raises(NoDevice):
        _reader(reader="no such reader").read_chip(*SPECIMEN, timeout=0.3)


def test_reader_survives_a_pcscd_restart(pcscd, pki):
    runner = VpcdChip(VirtualChip(DEMO_DOCUMENTS[1], pki), pcscd.port).start()
    try:
        wait_card(True)
        reader = _reader()
        assert reader.card_present()
        pcscd.stop()
        with pytest.raises(DeviceOffline):
            list_readers()
        assert reader.status().state.value == "offline"
        pcscd.start()
        # the same reader object, with the context it held before the restart
        doc = reader.read_chip("EA1234567", "900101", "320101", timeout=10)
        assert (doc.mrz.surname, doc.mrz.nationality) == ("ZHANG", "CHN")
        assert reader.status().state.value == "online"
    finally:
        runner.stop()
    wait_card(False)


def test_an_identity_says_when_the_chip_had_no_security_object():
    from kiosk.hardware.icao import pa
    from kiosk.hardware.icao.mrz import parse_mrz
    from kiosk.hardware.pcsc_reader import ChipDocument

    doc = ChipDocument(parse_mrz(DEMO_DOCUMENTS[1].mrz()), (1,), None, pa.verify(None, {}))
    extra = doc.identity().extra
    assert (extra["sod_present"], extra["hashes_valid"], extra["chain_valid"]) == ("false", "none", "none")
    assert (extra["dg1_document_number"], extra["dg1_birth_date"], extra["dg1_expiry_date"]) == (
        "EA1234567", "900101", "320101")


# --- the command line ----------------------------------------------------------------------
def _kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_cli_lists_readers(chip):
    out = _kiosk("hw", "readers", "--json")
    assert out.returncode == 0, out.stderr
    readers = json.loads(out.stdout)["readers"]
    assert any(r["name"].endswith("00 00") and r["card_present"] for r in readers)


def test_cli_reads_the_passport_with_a_configured_trust_store(chip, trust_store, tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[devices.pcsc]\ndriver = "pcsc"\noptions = {{ trust_store = "{trust_store}" }}\n')
    out = _kiosk("--config", str(config), "hw", "passport", "read", "--reader", "Virtual PCD",
                 "--document-number", "L898902C<", "--birth-date", "690806", "--expiry-date", "940623",
                 "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert (data["surname"], data["given_names"], data["sex"]) == ("ERIKSSON", "ANNA MARIA", "female")
    assert data["passive_authentication"] == {"sod_present": True, "hashes_valid": True, "chain_valid": True}


def test_cli_wrong_keys_is_bac_failed(chip):
    out = _kiosk("hw", "passport", "read", "--document-number", "L898902C<", "--birth-date", "690806",
                 "--expiry-date", "990101", "--json")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["error"]["code"] == "bac_failed"
