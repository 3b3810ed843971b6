"""The workflow engine without Kivy: every kind's path, refusals, payments, printing, reprint.

All against the live backend simulator over HTTP, with simulated devices.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from kiosk import localtime
from kiosk.errors import BackendError, BackendRefused, FieldError, NoCard, PaperOut, UnknownItemError
from print_templates.escpos_decode import decode
from kiosk.hardware.simulators.cards import DEMO_CARDS, DEMO_TRAVEL_DOCUMENTS, card_by_number
from kiosk.services import journal as J
from kiosk.services.runtime import Runtime
from kiosk.services.workflow.rules import Refused, check_card
from kiosk.services.workflow.steps import NAVMAP, Outcome, Step, StepError


S = Step
WANG = DEMO_CARDS[0]  # clean record, household head, a car with fines
ZHANG = card_by_number("370104199001013459")  # criminal record
LIU = card_by_number("410105197805204568")  # face matcher rejects her
CHEN = card_by_number("370112199511115674")  # expired card
ZHAO = card_by_number("370103195507127897")  # long-term card, no ID card application open
LI = card_by_number("370103196208082347")  # long-term card, free for an H13 of her own


def _entries(rt: Runtime, txn_id: str) -> dict[str, J.Entry]:
    return {e.kind: e for e in rt.journal.entries(txn_id)}


def test_every_kind_of_the_catalog_has_a_path(runtime):
    kinds = {item.kind for item in runtime.catalog.items}
    assert kinds <= set(NAVMAP)
    for item in runtime.catalog.items:
        txn = runtime.engine.start(item.id)
        path = txn.planned_path()
        assert path[-1] is S.PRODUCE
        assert (S.IDENTIFY in path) == item.needs_identity
        assert (S.FACE in path) == (item.identity == "id_card_and_face")
        assert (S.FORM in path) == bool(item.fields)
        if item.kind in ("query", "guide", "verify"):
            assert S.CONFIRM not in path and S.PAY not in path
        txn.finish()


def test_paths_per_kind(runtime, flows):
    start = runtime.engine.start
    assert start("H01").planned_path() == [S.IDENTIFY, S.FORM, S.CONFIRM, S.PRODUCE]
    assert start("S01").planned_path() == [S.IDENTIFY, S.FACE, S.FORM, S.CONFIRM, S.PRODUCE]
    assert start("S17").planned_path() == [S.PRODUCE]
    assert start("S02").planned_path() == [S.FORM, S.PRODUCE]
    assert start("H17").planned_path() == [S.IDENTIFY, S.PRODUCE]
    assert start("H13").planned_path() == [S.IDENTIFY, S.FORM, S.CONFIRM, S.PAY, S.PRODUCE]
    # A payment's amount is known only once the resident chose what to pay.
    t03 = start("T03")
    assert S.PAY not in t03.planned_path()
    flows.drive(t03, "", until=S.CONFIRM)
    assert t03.amount_fen > 0 and t03.planned_path() == [S.CONFIRM, S.PAY, S.PRODUCE]
    t03.finish()
    assert t03.outcome is Outcome.CANCELLED


def test_the_steps_a_visit_shows_come_from_the_declared_path(runtime, flows):
    start = runtime.engine.start
    h01 = start("H01")
    assert h01.steps() == [S.IDENTIFY, S.FORM, S.CONFIRM, S.PRODUCE]
    assert start("S01").steps() == [S.IDENTIFY, S.FACE, S.FORM, S.CONFIRM, S.PRODUCE]
    assert start("H17").steps() == [S.IDENTIFY, S.PRODUCE]  # a query shows fewer steps
    # A payment whose amount the form decides plans its payment from the start: the count
    # does not grow in the middle of the visit.
    t03 = start("T03")
    planned = [S.IDENTIFY, S.FORM, S.CONFIRM, S.PAY, S.PRODUCE]
    assert t03.steps() == planned
    flows.drive(t03, "", until=S.CONFIRM)
    assert t03.step is S.CONFIRM and t03.steps() == planned
    for txn in (h01, t03):
        txn.finish()


def test_h01_certificate_prints_and_journals_without_personal_data(runtime, sim, flows):
    txn = runtime.engine.start("H01")
    produced = flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED and txn.error is None
    assert len(produced.documents) == 1 and produced.documents[0].read_bytes().startswith(b"%PDF")
    assert len(produced.receipts) == 1 and produced.verification_codes
    tray = list((runtime.state_dir.parent / "paper_tray").glob("*.pdf"))
    assert len(tray) == 1
    entries = _entries(runtime, txn.id)
    assert {k: e.state for k, e in entries.items()} == {
        J.OPERATE: J.DONE, J.PRINT_A4: J.DONE, J.PRINT_RECEIPT: J.DONE}
    doc_id = entries[J.OPERATE].refs["document_id"]
    assert entries[J.PRINT_A4].refs["document_id"] == doc_id
    assert entries[J.OPERATE].id_hash == runtime.journal.id_hash(WANG.id_number)
    dumped = json.dumps([e.__dict__ for e in entries.values()], default=str, ensure_ascii=False)
    assert WANG.name not in dumped and WANG.id_number not in dumped
    keys = {e["idempotency_key"] for e in flows.sim_effects(sim.url) if e["kind"] == "operation"}
    assert entries[J.OPERATE].key in keys
    folder = txn.session.folder
    txn.finish()
    assert not folder.exists() and txn.session.identity is None


def _self_signed_pem(folder):
    """A throw-away signing key and certificate, as a site's PKI would issue."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kiosk Document Signer")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_file, cert_file = folder / "signer.key", folder / "signer.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def test_printed_certificates_carry_a_pdf_signature_when_the_config_names_a_key(sim, tmp_path, flows):
    from print_templates.pdf_signing import check_pdf_signature

    key, cert = _self_signed_pem(tmp_path)
    cfg = flows.config_for(sim.url, tmp_path / "state",
                           printing={"pdf_sign_key_file": str(key), "pdf_sign_cert_file": str(cert)})
    rt = Runtime.from_config(cfg)
    try:
        txn = rt.engine.start("H01")
        flows.drive(txn, sim.url, card=WANG)
        assert txn.outcome is Outcome.COMPLETED
        (printed,) = (tmp_path / "paper_tray").glob("*.pdf")
        assert check_pdf_signature(printed, [cert]).ok
        txn.finish()
    finally:
        rt.stop()


def test_paid_flow_pays_once_then_produces_a_receipt(runtime, sim, flows):
    txn = runtime.engine.start("T03")
    produced = flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED and produced.receipts
    entries = _entries(runtime, txn.id)
    order_id = entries[J.PAY_CREATE].refs["order_id"]
    assert entries[J.PAY_PAID].refs["order_id"] == order_id
    assert entries[J.OPERATE].refs.get("order_id") == order_id
    assert entries[J.PRINT_RECEIPT].refs["amount_fen"] == txn.amount_fen
    effects = [e for e in flows.sim_effects(sim.url) if e["reference"] == order_id]
    assert sorted(e["kind"] for e in effects) == ["payment_order", "payment_paid"]
    assert runtime.backend.get_order(order_id)["status"] == "paid"
    txn.finish()


def test_face_check_passes_for_the_holder(runtime, sim, flows):
    txn = runtime.engine.start("S01")
    flows.drive(txn, sim.url, until=S.FACE)
    result = txn.face_check(None)
    assert result.matched and txn.step is S.FORM
    flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED


def test_face_mismatch_three_times_sends_to_the_counter(runtime, sim):
    txn = runtime.engine.start("S01")
    txn.identify(LIU)
    assert [txn.face_check(b"\xff\xd8live").tries_left for _ in range(2)] == [2, 1]
    assert txn.step is S.FACE
    with pytest.raises(Refused) as exc:
        txn.face_check(b"\xff\xd8live")
    assert exc.value.rule == "face_mismatch_send_to_counter"
    assert (txn.outcome, txn.reason) == (Outcome.REFUSED, "face_mismatch_send_to_counter")
    assert "counter" in exc.value.where_en and exc.value.message("zh_CN") != exc.value.message("en")
    with pytest.raises(StepError):
        txn.face_check(b"again")


def _face_step(sequence: str):
    from kiosk.hardware.simulators.camera import SimCamera
    from kiosk.services.face.step import FaceStep

    step = FaceStep(SimCamera("camera", {"sequence": sequence, "realtime": False}), lockstep=True)
    step.start()
    outcome = step.result(120)
    step.stop()
    return outcome


def test_face_attempt_sends_the_live_capture_and_the_session_wipes_it(runtime, sim, flows):
    outcome = _face_step("approach")
    assert outcome.captured
    sent = []
    compare = runtime.backend.compare_face
    runtime.backend.compare_face = lambda id_number, image: (sent.append(bytes(image)), compare(id_number, image))[1]
    txn = runtime.engine.start("S01")
    flows.drive(txn, sim.url, until=S.FACE)
    result = txn.face_attempt(outcome)
    assert result.matched and result.reason == "" and txn.step is S.FORM
    assert sent == [bytes(outcome.image)] and sent[0][:2] == b"\xff\xd8"
    assert txn.session.face_image is outcome.image
    txn.cancel()
    txn.finish()
    assert txn.session.face_image is None and not any(outcome.image)  # zeroed, not just dropped


def test_liveness_failures_count_as_tries_and_the_third_refuses_liveness_failed(runtime, sim, flows):
    outcome = _face_step("photo")
    assert outcome.status == "liveness_failed"
    calls = []
    compare = runtime.backend.compare_face
    runtime.backend.compare_face = lambda *a: (calls.append(a), compare(*a))[1]
    txn = runtime.engine.start("S01")
    flows.drive(txn, sim.url, until=S.FACE)
    first, second = txn.face_attempt(outcome), txn.face_attempt(outcome)
    assert [(r.matched, r.tries_left, r.reason) for r in (first, second)] == [
        (False, 2, "liveness_failed"), (False, 1, "liveness_failed")]
    with pytest.raises(Refused) as exc:
        txn.face_attempt(outcome)
    assert (txn.outcome, txn.reason) == (Outcome.REFUSED, "liveness_failed")
    assert exc.value.message("zh_CN") != exc.value.message("en") and "counter" in exc.value.where_en
    assert calls == []  # nothing of a photo reaches the backend


def test_a_mismatch_then_liveness_failures_refuse_with_the_last_reason(runtime, sim):
    from kiosk.services.face.step import FaceOutcome

    txn = runtime.engine.start("S01")
    txn.identify(LIU)
    assert txn.face_check(b"\xff\xd8live").reason == "face_mismatch"
    assert txn.face_attempt(FaceOutcome("liveness_failed")).tries_left == 1
    with pytest.raises(Refused):
        txn.face_attempt(FaceOutcome("liveness_failed"))
    assert txn.reason == "liveness_failed"
    with pytest.raises(ValueError):
        runtime.engine.start("S01").face_attempt(FaceOutcome("camera_failed"))


def test_expired_card_is_refused_at_identify(runtime):
    txn = runtime.engine.start("H01")
    with pytest.raises(Refused) as exc:
        txn.identify(CHEN)
    assert exc.value.rule == "id_card_expired"
    assert (txn.outcome, txn.reason, txn.step) == (Outcome.REFUSED, "id_card_expired", S.DONE)
    assert runtime.journal.entries(txn.id) == []


def test_card_type_the_item_does_not_accept_is_refused(runtime):
    passport = next(d.holder for d in DEMO_TRAVEL_DOCUMENTS if d.holder.card_type == "passport")
    txn = runtime.engine.start("H01")
    with pytest.raises(Refused) as exc:
        txn.identify(passport)
    assert exc.value.rule == "card_type_not_accepted"
    e01 = runtime.engine.start("E01")
    with pytest.raises(Refused):
        e01.identify(WANG)  # a resident ID card is not a travel permit


def test_the_card_rules_are_read_from_the_item(runtime):
    h01, today = runtime.catalog.get("H01"), localtime.today()
    foreign = replace(WANG, card_type="foreign_permanent")
    with pytest.raises(Refused):
        check_card(h01, foreign, today)
    check_card(replace(h01, accepted_cards=("resident", "foreign_permanent")), foreign, today)
    with pytest.raises(Refused):
        check_card(h01, CHEN, today)
    check_card(replace(h01, accepts_expired_card=True), CHEN, today)
    check_card(runtime.catalog.get("H12"), CHEN, today)  # renewing an expired card is what H12 is for


def test_backend_refusal_keeps_its_rule(runtime, sim, flows):
    txn = runtime.engine.start("S01")
    flows.drive(txn, sim.url, card=ZHANG, until=S.PRODUCE)
    with pytest.raises(BackendRefused) as exc:
        txn.produce()
    assert txn.outcome is Outcome.REFUSED and txn.reason == exc.value.rule
    assert _entries(runtime, txn.id)[J.OPERATE].state == J.FAILED


def test_bad_form_value_keeps_the_step(runtime, flows):
    txn = runtime.engine.start("H13")
    txn.identify(WANG)
    with pytest.raises(FieldError) as exc:
        txn.submit_form({**flows.happy_values(txn), "phone": "12345"})
    assert exc.value.field == "phone" and txn.step is S.FORM and txn.outcome is None
    with pytest.raises(FieldError):
        txn.submit_form({**flows.happy_values(txn), "no_such_field": "x"})
    assert txn.submit_form(flows.happy_values(txn)) is S.CONFIRM
    with pytest.raises(StepError):
        txn.produce()
    with pytest.raises(UnknownItemError):
        runtime.engine.start("Z99")


def test_no_card_on_the_reader_can_be_retried(runtime):
    reader = runtime.devices.id_card
    reader.inject("no_card", 1)
    txn = runtime.engine.start("H01")
    with pytest.raises(NoCard):
        txn.identify()
    assert txn.step is S.IDENTIFY and txn.outcome is None
    reader.place(WANG)
    txn.identify()
    assert txn.step is S.FORM


def test_payment_timeout_cancels_the_order(runtime, sim, flows):
    now = [1000.0]
    runtime.engine.clock = lambda: now[0]
    txn = runtime.engine.start("H13")
    flows.drive(txn, sim.url, until=S.PAY)
    order = txn.start_payment()
    assert txn.poll_payment()["status"] == "pending" and txn.step is S.PAY
    now[0] += runtime.config.payment.timeout_s + 1
    assert txn.poll_payment()["status"] == "cancelled"
    assert (txn.outcome, txn.reason) == (Outcome.FAILED, "payment_timeout")
    kinds = sorted(e["kind"] for e in flows.sim_effects(sim.url) if e["reference"] == order["order_id"])
    assert kinds == ["payment_cancel", "payment_order"]
    assert _entries(runtime, txn.id)[J.PAY_CANCEL].state == J.DONE
    txn.finish()


def test_late_payment_at_cancel_goes_on_to_produce(runtime, sim, flows):
    txn = runtime.engine.start("H13")
    flows.drive(txn, sim.url, until=S.PAY)
    order = txn.start_payment()
    flows.sim_pay(sim.url, order["order_id"])  # paid just as the resident pressed cancel
    assert txn.cancel_payment()["status"] == "paid"
    assert txn.step is S.PRODUCE and txn.outcome is None
    txn.produce()
    assert txn.outcome is Outcome.COMPLETED
    kinds = sorted(e["kind"] for e in flows.sim_effects(sim.url) if e["reference"] == order["order_id"])
    assert kinds == ["payment_order", "payment_paid"]  # no cancel went through, no refund needed
    txn.finish()


def test_walking_away_after_paying_still_delivers_the_service(runtime, sim, flows):
    txn = runtime.engine.start("H13")
    flows.drive(txn, sim.url, card=ZHAO, until=S.PRODUCE)  # paid; the resident leaves before the receipt
    txn.cancel("timeout")
    assert (txn.outcome, txn.reason) == (Outcome.COMPLETED, "resident_left")
    entries = _entries(runtime, txn.id)
    assert entries[J.OPERATE].state == J.DONE and entries[J.OPERATE].refs["order_id"]
    assert (entries[J.PRINT_RECEIPT].state, entries[J.PRINT_RECEIPT].code) == (J.FAILED, "resident_left")
    txn.finish()
    assert [p.kind for p in runtime.engine.pending_reprints(ZHAO)] == [J.PRINT_RECEIPT]
    produced = runtime.engine.reprint(ZHAO)
    assert len(produced.receipts) == 1 and runtime.engine.pending_reprints(ZHAO) == []
    lines = decode(produced.receipts[0]).lines
    for label in ("受理编号", "办理状态", "预计办结", "工本费"):  # the case the operation opened, never printed before
        assert any(line.startswith(label + "：") for line in lines), label


def _lines_but_time(receipt: Any) -> list[str]:
    return [line for line in receipt.lines if not line.startswith("办理时间")]


def test_a_reprinted_receipt_keeps_its_result_lines_and_verification_qr(runtime, sim, flows):
    printer = runtime.devices.receipt_printer
    printer.inject("paper_out", True)
    txn = runtime.engine.start("H01")
    produced = flows.drive(txn, sim.url, card=WANG)
    assert produced.undelivered == ("paper_out",) and len(produced.display) >= 3
    original = decode(produced.receipts[0])  # what the resident should have taken
    txn.finish()
    printer.inject("paper_out", False)
    reprinted = runtime.engine.reprint(WANG)
    again = decode(reprinted.receipts[0])
    assert original.qr_codes and again.qr_codes == original.qr_codes  # the same verification QR
    assert _lines_but_time(again) == _lines_but_time(original)  # every result line, as first printed
    assert printer.jobs[-1] == reprinted.receipts[0] and runtime.engine.pending_reprints(WANG) == []


def test_cancel_before_paying_cancels_the_order(runtime, sim, flows):
    txn = runtime.engine.start("H13")
    flows.drive(txn, sim.url, until=S.PAY)
    order = txn.start_payment()
    txn.cancel()
    assert txn.outcome is Outcome.CANCELLED
    assert runtime.backend.get_order(order["order_id"])["status"] == "cancelled"
    txn.finish()


def test_paper_out_keeps_the_document_for_reprint_on_the_next_card_read(runtime, sim, flows):
    a4 = runtime.devices.a4_printer
    a4.inject("paper_out", True)
    txn = runtime.engine.start("H01")
    produced = flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED
    assert isinstance(txn.error, PaperOut) and produced.undelivered == ("paper_out",)
    assert "reprint" in txn.error.message("en")
    txn.finish()
    a4.inject("paper_out", False)
    a4.refill()
    # Another resident is owed nothing; the same card is.
    assert runtime.engine.pending_reprints(DEMO_CARDS[1]) == []
    again = runtime.engine.start("H04")
    owed = again.identify(WANG)
    assert [p.kind for p in owed] == [J.PRINT_A4]
    reprinted = again.reprint()
    assert reprinted.undelivered == () and len(reprinted.documents) == 1
    assert again.pending_reprints == ()
    assert runtime.engine.pending_reprints(WANG) == []
    assert len(list((runtime.state_dir.parent / "paper_tray").glob("*.pdf"))) == 1
    again.finish()


def test_guide_and_verify_need_no_identity(runtime, sim, flows):
    guide = runtime.engine.start("S17")
    produced = guide.produce()
    assert guide.outcome is Outcome.COMPLETED and produced.display
    h01 = runtime.engine.start("H01")
    flows.drive(h01, sim.url)
    code = h01.produced.verification_codes[0]
    h01.finish()
    verify = runtime.engine.start("S02")
    verify.submit_form({"verification_code": code})
    produced = verify.produce()
    assert verify.outcome is Outcome.COMPLETED
    # A verdict is worded in each language: the value in Chinese, value_en in English.
    assert (produced.display[0]["value"], produced.display[0]["value_en"]) == ("真实有效", "genuine")
    forged = runtime.engine.start("S02")
    forged.submit_form({"verification_code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
    assert "not found" in forged.produce().display[0]["value_en"]


def test_reprint_fetches_with_the_plain_hash_the_api_expects(runtime, sim, flows):
    h01 = runtime.engine.start("H01")
    flows.drive(h01, sim.url)
    doc_id = h01.session.documents[0]["document_id"]
    h01.finish()
    got = runtime.backend.fetch_document(doc_id, WANG.id_number)
    assert got["document_id"] == doc_id


def test_backend_down_makes_backend_items_unavailable(sim, tmp_path, flows):
    rt = Runtime.from_config(flows.config_for("http://127.0.0.1:9", tmp_path / "state",
                                        backend={"connect_timeout_s": 0.5}))
    try:
        assert rt.backend_up() is False
        ok, reason = rt.item_available(rt.catalog.get("H01"))
        assert (ok, reason) == (False, "backend_unavailable") and not rt.item_available(rt.catalog.get("H01"))
        guide = rt.catalog.get("S17")
        assert bool(rt.item_available(guide)) is (not guide.needs_backend)
    finally:
        rt.stop()


def test_runtime_reports_a_broken_printer(runtime):
    runtime.devices.a4_printer.inject("offline", True)
    ok, reason = runtime.item_available(runtime.catalog.get("H01"))
    assert (ok, reason) == (False, "a4_printer_unavailable")
    assert runtime.item_available(runtime.catalog.get("T03"))  # receipt-only items still run


@pytest.fixture(scope="module")
def shared_runtime(shared_sim, tmp_path_factory, flows):
    rt = Runtime.from_config(flows.config_for(shared_sim.url, tmp_path_factory.mktemp("all") / "state"))
    yield rt
    rt.stop()


@pytest.mark.parametrize("item_id", [f"{c}{n:02d}" for c, count in
                                     (("H", 22), ("S", 17), ("T", 18), ("E", 9), ("G", 5))
                                     for n in range(1, count + 1)])
def test_every_item_runs_its_happy_path(shared_runtime, shared_sim, item_id, flows):
    txn = shared_runtime.engine.start(item_id)
    flows.drive(txn, shared_sim.url)
    assert (txn.outcome, txn.reason) == (Outcome.COMPLETED, ""), txn.error
    item = txn.item
    produced = txn.produced
    if "a4_document" in item.outputs:
        assert len(produced.documents) == 1
    if item.slip_on_request:
        # A query: results on screen, nothing printed until the resident asks for the slip.
        assert produced.slip_offered and not produced.receipts and produced.display
        assert decode(txn.print_slip()).text  # the slip the resident asked for
    elif set(item.outputs) & {"receipt", "slip"}:
        assert produced.receipts
    txn.finish()


def test_embedded_backend_starts_and_stops_with_the_runtime(tmp_path, flows):
    import requests

    from kiosk.config import from_dict

    state = tmp_path / "state"
    rt = Runtime.from_config(from_dict({"paths": {"state_dir": str(state)},
                                        "devices": {"a4_printer": {"options": {"output_dir": str(tmp_path / "t")}}}}))
    try:
        assert rt.sim is not None and rt.sim.url.startswith("http://127.0.0.1:")
        assert rt.config.backend.url == rt.sim.url and rt.backend_up()
        assert (state / "backend-sim.sqlite3").exists()
        txn = rt.engine.start("H01")
        flows.drive(txn, rt.sim.url)
        assert txn.outcome is Outcome.COMPLETED
        txn.finish()
        url = rt.sim.url
    finally:
        rt.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/v1/health", timeout=2)
    assert (state / "logs" / "kiosk.log").stat().st_size > 0


def test_backend_failing_after_payment_is_asked_again_and_delivers(runtime, sim, flows):
    import requests

    txn = runtime.engine.start("H13")
    flows.drive(txn, sim.url, card=LI, until=S.PRODUCE)
    order_id = txn.order["order_id"]
    # Four 503s in a row: the kiosk keeps asking under the same key (within backend.unknown_outcome_s),
    # so the resident who paid gets the service instead of a refund.
    requests.post(f"{sim.url}/api/v1/sim/faults", json={"fail_next": 4, "mode": "error"}, timeout=5).raise_for_status()
    produced = txn.produce()
    assert (txn.outcome, txn.reason) == (Outcome.COMPLETED, "") and produced.receipts
    entries = _entries(runtime, txn.id)
    assert entries[J.OPERATE].state == J.DONE and J.PAY_REFUND not in entries
    assert runtime.backend.get_order(order_id)["status"] == "paid"
    kinds = [e["kind"] for e in flows.sim_effects(sim.url) if e["reference"] == order_id]
    assert sorted(kinds) == ["payment_order", "payment_paid"]
    txn.finish()


def test_a_refusal_after_payment_refunds_and_loses_nothing(runtime, sim, flows):
    from kiosk.backend_sim import registry

    txn = runtime.engine.start("H13")
    flows.drive(txn, sim.url, card=LI, until=S.PRODUCE)
    order_id = txn.order["order_id"]
    operation = registry.OPERATIONS["id_card_damaged_replacement"]

    def refuse(ctx: Any) -> Any:
        ctx.refuse("record_locked", "档案暂不可用。", "The record is locked.", "请到窗口。", "Go to a counter.")

    registry.OPERATIONS["id_card_damaged_replacement"] = refuse
    try:
        with pytest.raises(BackendRefused) as exc:
            txn.produce()
    finally:
        registry.OPERATIONS["id_card_damaged_replacement"] = operation
    assert (txn.outcome, txn.reason) == (Outcome.REFUSED, exc.value.rule)
    entries = _entries(runtime, txn.id)
    assert entries[J.OPERATE].state == J.FAILED and entries[J.PAY_REFUND].state == J.DONE
    assert runtime.backend.get_order(order_id)["status"] == "refunded"
    kinds = [e["kind"] for e in flows.sim_effects(sim.url) if e["reference"] == order_id]
    assert sorted(kinds) == ["payment_order", "payment_paid", "payment_refund"]
    txn.finish()


def _permit() -> Any:
    from kiosk.hardware.simulators.cards import travel_document_by_number

    return travel_document_by_number("C12345678")


def test_typed_travel_details_open_the_chip(runtime):
    permit = _permit()
    runtime.devices.get("pcsc").place(permit)
    txn = runtime.engine.start("E01")
    # A resident types the dates as printed (YYYYMMDD) and the number in lower case.
    txn.identify(access=(permit.document_number.lower(), "19" + permit.birth_date, "20" + permit.expiry_date))
    assert txn.step is S.FORM and txn.session.id_number == permit.holder.id_number


def test_mistyped_travel_details_leave_the_step_open(runtime):
    from kiosk.errors import BacFailed

    permit = _permit()
    runtime.devices.get("pcsc").place(permit)
    txn = runtime.engine.start("E01")
    with pytest.raises(FieldError) as exc:
        txn.identify(access=(permit.document_number, "19850231", "20330630"))
    assert exc.value.field == "birth_date" and txn.step is S.IDENTIFY and txn.outcome is None
    with pytest.raises(BacFailed):  # well formed but wrong: the chip stays shut
        txn.identify(access=(permit.document_number, "19850316", "20" + permit.expiry_date))
    assert txn.step is S.IDENTIFY and txn.outcome is None
    txn.identify(access=(permit.document_number, "19" + permit.birth_date, "20" + permit.expiry_date))
    assert txn.step is S.FORM


def test_scan_access_waits_briefly_and_reads_the_data_page(runtime):
    from kiosk.errors import MrzUnreadable
    from kiosk.hardware.simulators.vicc import DemoDocument

    permit = _permit()
    runtime.devices.get("pcsc").place(permit)
    scanner = runtime.devices.get("scanner")
    txn = runtime.engine.start("E01")
    assert txn.scan_access(0.05) is None  # nothing under the scanner yet: ask again later
    scanner.feed("not a machine readable zone")
    with pytest.raises(MrzUnreadable):
        txn.scan_access(0.05)
    misread = DemoDocument("C", "CHN", "WANG", "JIANGUO", permit.document_number, "CHN", permit.birth_date,
                           "M", permit.expiry_date).mrz().replace(permit.document_number, "C12345B78")
    scanner.feed(misread)  # an 8 read as B: the check digit gives it away before the chip is tried
    with pytest.raises(MrzUnreadable):
        txn.scan_access(0.05)
    scanner.feed(DemoDocument("C", "CHN", "WANG", "JIANGUO", permit.document_number, "CHN", permit.birth_date,
                              "M", permit.expiry_date).mrz())
    access = txn.scan_access(0.05)
    assert access == (permit.document_number, permit.birth_date, permit.expiry_date)
    txn.identify(access=access)
    assert txn.step is S.FORM and txn.outcome is None


def test_a_query_slip_prints_only_on_request_once_and_is_never_owed(runtime, sim, flows):
    from kiosk.errors import PaperOut

    printer = runtime.devices.get("receipt_printer")
    txn = runtime.engine.start("T01")
    flows.drive(txn, sim.url, card=WANG)
    assert txn.outcome is Outcome.COMPLETED and txn.produced.slip_offered
    assert printer.jobs == []  # the violations are on screen; no paper yet
    printer.inject("paper_out")
    with pytest.raises(PaperOut):
        txn.print_slip()
    assert txn.outcome is Outcome.COMPLETED  # a slip that did not print changes nothing done
    printer.clear("paper_out")  # the technician loads a roll; the resident asks again
    slip = txn.print_slip()
    assert printer.jobs == [slip] and txn.produced.display[0]["value"] in decode(slip).text
    assert txn.print_slip() == slip and len(printer.jobs) == 1  # asked twice, printed once
    txn.finish()
    assert runtime.engine.pending_reprints(WANG) == []  # nothing owed for a query slip
    assert [e.kind for e in runtime.journal.entries(txn.id)] == [J.OPERATE]


def test_items_that_are_not_queries_have_no_slip_to_ask_for(runtime, sim, flows):
    txn = runtime.engine.start("H01")
    flows.drive(txn, sim.url, card=WANG)
    with pytest.raises(StepError):
        txn.print_slip()


def test_a_query_runs_while_the_receipt_printer_is_out_and_offers_no_slip(runtime, sim, flows):
    printer = runtime.devices.get("receipt_printer")
    printer.inject("paper_out")
    try:
        txn = runtime.engine.start("T01")
        flows.drive(txn, sim.url, card=WANG)
        assert txn.outcome is Outcome.COMPLETED and txn.produced.display
        assert not txn.produced.slip_offered
        with pytest.raises(StepError):
            txn.print_slip()
    finally:
        printer.clear("paper_out")


def test_without_a_scanner_travel_details_are_typed(sim, tmp_path, flows):
    from kiosk.errors import NoDevice

    cfg = flows.config_for(sim.url, tmp_path / "state", devices={"scanner": {"enabled": False}})
    rt = Runtime.from_config(cfg)
    try:
        assert rt.item_available(rt.catalog.get("E01"))  # typing the details still opens the chip
        permit = _permit()
        rt.devices.get("pcsc").place(permit)
        txn = rt.engine.start("E01")
        with pytest.raises(NoDevice):
            txn.scan_access(0.05)
        txn.identify(access=(permit.document_number, "19" + permit.birth_date, "20" + permit.expiry_date))
        assert txn.step is S.FORM
    finally:
        rt.stop()


@pytest.mark.parametrize("mode", ["garbage", "error"])
def test_a_failed_lookup_keeps_the_transaction_and_can_be_asked_again(fresh_sim, flows, tmp_path, request, mode):
    import requests

    from kiosk.errors import BackendProtocolError, BackendServerError

    raised = {"garbage": BackendProtocolError, "error": BackendServerError}[mode]
    sim = fresh_sim  # records of its own: the resident's fine is still unpaid
    runtime = Runtime.from_config(flows.config_for(sim.url, tmp_path / "state"))
    request.addfinalizer(runtime.stop)
    txn = runtime.engine.start("T03")
    flows.drive(txn, sim.url, until=S.FORM)
    lookup = next(f.name for f in txn.item.fields if f.type == "lookup")
    # As many failures as the client makes attempts (backend.retries is 1 here): the lookup fails for good.
    attempts = runtime.backend.retries + 1
    requests.post(f"{sim.url}/api/v1/sim/faults", json={"fail_next": attempts, "mode": mode},
                  timeout=5).raise_for_status()
    with pytest.raises(raised):
        txn.options(lookup)
    requests.post(f"{sim.url}/api/v1/sim/faults", json={"fail_next": 0}, timeout=5).raise_for_status()  # it is back
    # A read that changed nothing: still open, on the form, and asking again gets the resident's records.
    assert (txn.outcome, txn.step) == (None, S.FORM)
    assert txn.options(lookup)
    flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED
    txn.finish()


def test_a_lookup_whose_answer_fails_its_signature_still_ends_the_transaction(runtime, sim, flows):
    import requests

    from kiosk.errors import SignatureError

    txn = runtime.engine.start("T03")
    flows.drive(txn, sim.url, until=S.FORM)
    lookup = next(f.name for f in txn.item.fields if f.type == "lookup")
    requests.post(f"{sim.url}/api/v1/sim/faults", json={"fail_next": 1, "mode": "tamper"},
                  timeout=5).raise_for_status()
    with pytest.raises(SignatureError):
        txn.options(lookup)
    assert (txn.outcome, txn.reason) == (Outcome.FAILED, SignatureError.code)
    txn.finish()
