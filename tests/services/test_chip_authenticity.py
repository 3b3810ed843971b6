"""A passport or permit chip must prove itself in the identify step (E01, E02, S09).

The demo profile's chip reader simulator holds real DG1, DG2 and EF.SOD signed by the demo
document signer under the demo CSCA (its trust store); its faults forge chips the way an
attacker would: DG1 changed after signing (``tampered``), another document's genuine
files behind the presented keys (``cloned``), no EF.SOD (``no_sod``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.simulators.cards import travel_document_by_number
from kiosk.hardware.simulators.chip_files import TestPki
from kiosk.services.runtime import Runtime
from kiosk.services.workflow.rules import Refused, check_chip
from kiosk.services.workflow.steps import Outcome, Step

PERMIT = travel_document_by_number("C12345678")  # 王小明's Hong Kong/Macau permit
ACCESS = (PERMIT.document_number, "19" + PERMIT.birth_date, "20" + PERMIT.expiry_date)  # as a resident types it


def test_a_genuine_chip_opens_the_item_and_the_service_completes(runtime: Runtime, sim: Any, flows: Any) -> None:
    runtime.devices.get("pcsc").place(PERMIT)
    txn = runtime.engine.start("E01")
    txn.identify(access=ACCESS)
    assert txn.step is Step.FORM and txn.outcome is None
    extra = txn.session.identity.extra
    assert (extra["sod_present"], extra["hashes_valid"], extra["chain_valid"]) == ("true", "true", "true")
    assert (extra["dg1_document_number"], extra["dg1_birth_date"]) == (PERMIT.document_number, PERMIT.birth_date)
    produced = flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED and produced.receipts
    txn.finish()


@pytest.mark.parametrize("forgery", ["tampered", "cloned", "no_sod"])
def test_a_forged_chip_is_refused_and_the_resident_sent_to_the_counter(runtime: Runtime, forgery: str) -> None:
    chip = runtime.devices.get("pcsc")
    chip.place(PERMIT)
    chip.inject(forgery, 1)
    txn = runtime.engine.start("E01")
    with pytest.raises(Refused) as exc:
        txn.identify(access=ACCESS)
    assert chip.applied()[forgery] >= 1
    assert exc.value.rule == "chip_not_authentic"
    assert (txn.outcome, txn.reason, txn.step) == (Outcome.REFUSED, "chip_not_authentic", Step.DONE)
    assert "counter" in exc.value.where_en and "窗口" in exc.value.where_zh
    assert exc.value.message("zh_CN") != exc.value.message("en")
    assert txn.session.identity is None  # a forged identity is never taken
    assert runtime.journal.entries(txn.id) == []
    txn.finish()


def test_a_chip_signed_under_a_csca_the_kiosk_does_not_trust_is_refused(sim: Any, tmp_path: Path,
                                                                          flows: Any) -> None:
    other = tmp_path / "other-csca.pem"
    other.write_bytes(TestPki().csca_pem())
    cfg = flows.config_for(sim.url, tmp_path / "state", devices={"pcsc": {"options": {"trust_store": str(other)}}})
    rt = Runtime.from_config(cfg)
    try:
        rt.devices.get("pcsc").place(PERMIT)
        txn = rt.engine.start("E01")
        with pytest.raises(Refused) as exc:
            txn.identify(access=ACCESS)
        assert exc.value.rule == "chip_not_authentic"
    finally:
        rt.stop()


def _card(**extra: str) -> IdentityCard:
    proved = {"sod_present": "true", "hashes_valid": "true", "chain_valid": "true",
              "dg1_document_number": PERMIT.document_number, "dg1_birth_date": PERMIT.birth_date,
              "dg1_expiry_date": PERMIT.expiry_date}
    return IdentityCard("permit", "王小明", PERMIT.holder.id_number, extra={**proved, **extra})


def test_the_production_profile_needs_the_chain_checked() -> None:
    access = (PERMIT.document_number, PERMIT.birth_date, PERMIT.expiry_date)
    unchecked = _card(chain_valid="none")  # a reader with no trust store could not check it
    check_chip(unchecked, access, production=False)  # the demo profile takes it ...
    with pytest.raises(Refused) as exc:  # ... production does not
        check_chip(unchecked, access, production=True)
    assert exc.value.rule == "chip_not_authentic"
    check_chip(_card(), access, production=True)
    for bad in (_card(chain_valid="false"), _card(sod_present="false", hashes_valid="none"),
                _card(hashes_valid="false"), _card(dg1_document_number="C87654321"),
                _card(dg1_expiry_date="340315"), _card(dg1_document_number="")):
        with pytest.raises(Refused):
            check_chip(bad, access, production=False)
    check_chip(_card(), (PERMIT.document_number.lower() + "<", PERMIT.birth_date, PERMIT.expiry_date),
               production=False)


def test_the_engine_checks_chips_as_its_profile_says(runtime: Runtime) -> None:
    engine, demo = runtime.engine, runtime.engine.config
    assert engine.production is False
    engine.config = demo.model_copy(update={"profile": "production"})
    try:
        assert engine.production is True  # what identify hands to the chip check
    finally:
        engine.config = demo