"""Every simulator: what it delivers, each fault, and the status each fault maps to."""
from __future__ import annotations

import shutil
import threading

import pytest

from kiosk.errors import (BacFailed, CardRemoved, ConfigError, CoverOpen, DeviceOffline, DeviceProtocolError,
                          DeviceTimeout, NoCard, PaperOut, PrintFailed)
from kiosk.hardware.base import DeviceState, DeviceStatus, SupplyState
from kiosk.hardware.simulators.a4 import SimA4Printer
from kiosk.hardware.simulators.camera import SimCamera
from kiosk.hardware.simulators.cards import DEMO_CARDS, DEMO_TRAVEL_DOCUMENTS, card_by_number
from kiosk.hardware.simulators.idcard import SimIdCardReader
from kiosk.hardware.simulators.pcsc import SimChipReader
from kiosk.hardware.simulators.receipt import SimReceiptPrinter
from kiosk.hardware.simulators.scanner import SimScanner

ZHANG_WEI = "370104199001013459"


def _in_thread(fn):
    """Run fn in a thread; returns (thread, box) where box gets 'result' or 'error'."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except Exception as exc:  # handed back to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# --- shared behaviour -------------------------------------------------------------------
ALL_SIMS = [SimIdCardReader, SimChipReader, SimReceiptPrinter, SimA4Printer, SimScanner, SimCamera]


@pytest.mark.parametrize("cls", ALL_SIMS, ids=lambda c: c.__name__)
def test_status_never_raises_under_any_fault(cls, tmp_path):
    sim = cls("dev", {"output_dir": str(tmp_path)} if cls is SimA4Printer else {})
    assert sim.status().state == DeviceState.ONLINE
    for fault in sorted(cls.FAULTS):
        sim.inject(fault)
        assert isinstance(sim.status(), DeviceStatus)
        assert sim.faults() == {fault: True}
        sim.clear()
        assert sim.status().state == DeviceState.ONLINE


@pytest.mark.parametrize("cls", ALL_SIMS, ids=lambda c: c.__name__)
def test_config_typos_are_refused_with_their_key(cls):
    with pytest.raises(ConfigError) as err:
        cls("dev", {"dealy_s": 1})
    assert err.value.key == "devices.dev.options.dealy_s"
    with pytest.raises(ConfigError) as err:
        cls("dev", faults={"gremlins": True})
    assert err.value.key == "devices.dev.faults.gremlins"
    with pytest.raises(ConfigError):
        cls("dev", {"delay_s": "slow"})
    with pytest.raises(ConfigError):
        cls("dev", {"delay_s": -1})
    with pytest.raises(ValueError):
        cls("dev").inject("gremlins")


def test_fault_value_must_be_bool_or_count():
    with pytest.raises(ConfigError) as err:
        SimScanner("scanner", faults={"timeout": "sometimes"})
    assert err.value.key == "devices.scanner.faults.timeout"
    with pytest.raises(ConfigError):
        SimScanner("scanner", faults={"timeout": -2})


def test_counted_fault_fires_that_many_times_then_stops():
    scanner = SimScanner("scanner", {"codes": ["a", "b"]}, {"timeout": 2})
    for _ in range(2):
        with pytest.raises(DeviceTimeout):
            scanner.scan(timeout=0)
    assert scanner.scan(timeout=0) == "a"
    assert scanner.faults() == {}


# --- ID card reader -------------------------------------------------------------------
def test_every_fault_applied_to_an_operation_is_counted_and_status_counts_none(tmp_path):
    receipt = SimReceiptPrinter("receipt_printer", {}, {"paper_out": True, "cover_open": False})
    a4 = SimA4Printer("a4_printer", {"output_dir": str(tmp_path)}, {"jam": 1})
    for _ in range(3):
        receipt.status()  # seen, not applied
    assert receipt.applied() == {}
    for _ in range(2):
        with pytest.raises(PaperOut):
            receipt.print_bytes(b"\x1b@slip")
    assert receipt.applied() == {"paper_out": 2}
    pdf = tmp_path / "one.pdf"
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(pdf))
    canvas.drawString(100, 700, "x")
    canvas.save()
    with pytest.raises(PrintFailed):
        a4.print_pdf(pdf, "t")
    a4.print_pdf(pdf, "t")  # the counted jam fired once, then the job prints
    assert a4.applied() == {"jam": 1}
    assert SimScanner("scanner", {}, {"offline": True}).applied() == {}  # on, but nothing asked of it


def test_idcard_default_card_is_wang_xiaoming():
    reader = SimIdCardReader("id_card")
    card = reader.read_card(timeout=0)
    assert card == DEMO_CARDS[0] and card.name == "王小明"
    assert reader.card_present()
    assert reader.read_card(timeout=0) == card  # the card stays on the reader
    assert reader.reads == 2


def test_idcard_card_option_picks_a_demo_resident_and_unknown_is_refused():
    assert SimIdCardReader("id_card", {"card": ZHANG_WEI}).read_card(0).name == "张伟"
    with pytest.raises(ConfigError) as err:
        SimIdCardReader("id_card", {"card": "110101190001011234"})
    assert err.value.key == "devices.id_card.options.card"


def test_idcard_empty_reader_times_out_with_no_card():
    reader = SimIdCardReader("id_card", {"card_on_reader": False})
    assert not reader.card_present()
    with pytest.raises(NoCard):
        reader.read_card(timeout=0.05)


def test_idcard_read_waits_for_the_next_placement():
    reader = SimIdCardReader("id_card")
    reader.remove()
    thread, box = _in_thread(lambda: reader.read_card(timeout=30))
    reader.place(ZHANG_WEI)
    thread.join(30)
    assert box["result"].id_number == ZHANG_WEI


def test_idcard_place_accepts_any_identity_card_and_present_restores_default():
    reader = SimIdCardReader("id_card")
    reader.place(DEMO_CARDS[3])
    assert reader.read_card(0).name == "李秀英"
    reader.present()
    assert reader.read_card(0).name == "王小明"


def test_idcard_removed_mid_read_fault_leaves_the_reader_empty():
    reader = SimIdCardReader("id_card", faults={"card_removed_mid_read": 1})
    with pytest.raises(CardRemoved) as err:
        reader.read_card(timeout=0)
    assert err.value.code == "card_removed" and err.value.device == "id_card"
    assert not reader.card_present()
    with pytest.raises(NoCard):  # nobody put it back
        reader.read_card(timeout=0.05)
    reader.present()
    assert reader.read_card(0).name == "王小明"


def test_idcard_lifting_the_card_during_the_read_fails_it(monkeypatch):
    reader = SimIdCardReader("id_card")
    seen = []

    def resident_lifts_card(fraction: float = 1.0) -> None:
        seen.append(reader.status().state)
        reader.remove()

    monkeypatch.setattr(reader, "_pause", resident_lifts_card)
    with pytest.raises(CardRemoved):
        reader.read_card(timeout=0)
    assert seen == [DeviceState.BUSY]
    assert reader.status().state == DeviceState.ONLINE


def test_idcard_swapping_cards_during_the_read_fails_it(monkeypatch):
    reader = SimIdCardReader("id_card")
    monkeypatch.setattr(reader, "_pause", lambda fraction=1.0: reader.place(ZHANG_WEI))
    with pytest.raises(CardRemoved):
        reader.read_card(timeout=0)


@pytest.mark.parametrize("fault, error, state", [
    ("no_card", NoCard, DeviceState.ONLINE),
    ("timeout", DeviceTimeout, DeviceState.HARDWARE_ERROR),
    ("garbage", DeviceProtocolError, DeviceState.HARDWARE_ERROR),
    ("offline", DeviceOffline, DeviceState.OFFLINE),
])
def test_idcard_faults(fault, error, state):
    reader = SimIdCardReader("id_card")
    reader.inject(fault)
    assert reader.status().state == state
    with pytest.raises(error):
        reader.read_card(timeout=0)
    reader.clear(fault)
    assert reader.status().state == DeviceState.ONLINE
    assert reader.read_card(timeout=0).name == "王小明"


def test_idcard_card_present_reports_faults():
    reader = SimIdCardReader("id_card", faults={"no_card": True})
    assert reader.card_present() is False
    reader.inject("offline")
    with pytest.raises(DeviceOffline):
        reader.card_present()


def test_idcard_going_offline_wakes_a_waiting_read():
    reader = SimIdCardReader("id_card", {"card_on_reader": False})
    thread, box = _in_thread(lambda: reader.read_card(timeout=30))
    reader.inject("offline")
    thread.join(30)
    assert isinstance(box["error"], DeviceOffline)


def test_idcard_concurrent_reads_while_the_card_comes_and_goes():
    reader = SimIdCardReader("id_card")
    outcomes: list = []
    lock = threading.Lock()

    def read_many():
        for _ in range(200):
            try:
                result = reader.read_card(timeout=30)
            except CardRemoved as exc:
                result = exc
            with lock:
                outcomes.append(result)

    readers = [threading.Thread(target=read_many) for _ in range(4)]
    for t in readers:
        t.start()
    for i in range(300):
        reader.remove()
        reader.place(DEMO_CARDS[i % len(DEMO_CARDS)])
    for t in readers:
        t.join(60)
    assert not any(t.is_alive() for t in readers)
    assert len(outcomes) == 800
    assert all(o in DEMO_CARDS or isinstance(o, CardRemoved) for o in outcomes)


def test_idcard_repr_masks_personal_data():
    text = repr(SimIdCardReader("id_card").read_card(0))
    assert "王小明" not in text and "37010219850315123X" not in text


# --- PC/SC chip reader ----------------------------------------------------------------
PERMIT = DEMO_TRAVEL_DOCUMENTS[0]
PASSPORT = DEMO_TRAVEL_DOCUMENTS[2]


def test_pcsc_matching_mrz_opens_the_default_permit():
    reader = SimChipReader("pcsc")
    holder = reader.read_document(PERMIT.document_number, PERMIT.birth_date, PERMIT.expiry_date, timeout=0)
    assert holder.card_type == "permit" and holder.name == "王小明"
    assert holder.id_number == card_by_number(holder.id_number).id_number  # links to the resident
    assert int(holder.extra["endorsement_hk_trips"]) > 0


def test_pcsc_demo_chip_holds_real_files_signed_under_the_shipped_demo_csca(tmp_path):
    from kiosk.hardware.icao import lds, pa
    from kiosk.hardware.simulators.chip_files import DEMO_TRUST_STORE, TestPki, demo_chip_files

    files = demo_chip_files(PERMIT)
    assert lds.parse_dg1(files[lds.DG1]).document_number == PERMIT.document_number
    assert lds.parse_dg2(files[lds.DG2]).format == "jpeg"
    result = pa.verify(files[lds.EF_SOD], {1: files[lds.DG1], 2: files[lds.DG2]},
                       pa.load_trust_store(DEMO_TRUST_STORE))
    assert (result.sod_present, result.hashes_valid, result.chain_valid) == (True, True, True)
    holder = SimChipReader("pcsc").read_document(PERMIT.document_number, PERMIT.birth_date, PERMIT.expiry_date, 0)
    assert (holder.extra["sod_present"], holder.extra["hashes_valid"], holder.extra["chain_valid"]) == (
        "true", "true", "true")
    other = tmp_path / "other.pem"
    other.write_bytes(TestPki().csca_pem())
    foreign = SimChipReader("pcsc", {"trust_store": str(other)}).read_document(
        PERMIT.document_number, PERMIT.birth_date, PERMIT.expiry_date, 0)
    assert foreign.extra["chain_valid"] == "false"


def test_pcsc_forged_chips_report_what_gives_them_away():
    reader = SimChipReader("pcsc")
    access = (PERMIT.document_number, PERMIT.birth_date, PERMIT.expiry_date)
    reader.inject("tampered", 1)
    assert reader.read_document(*access, 0).extra["hashes_valid"] == "false"
    reader.inject("cloned", 1)
    cloned = reader.read_document(*access, 0).extra  # opened with these keys, someone else's genuine data inside
    assert cloned["hashes_valid"] == "true" and cloned["chain_valid"] == "true"
    assert cloned["dg1_document_number"] != PERMIT.document_number
    reader.inject("no_sod", 1)
    assert reader.read_document(*access, 0).extra["sod_present"] == "false"
    assert reader.applied() == {"tampered": 1, "cloned": 1, "no_sod": 1}
    assert reader.read_document(*access, 0).extra["hashes_valid"] == "true"  # each fired once


def test_pcsc_mrz_number_is_normalised():
    reader = SimChipReader("pcsc")
    holder = reader.read_document("c12345678<", "850315", "330630", timeout=0)
    assert holder.extra["document_number"] == "C12345678"


@pytest.mark.parametrize("number, birth, expiry", [
    ("C12345679", "850315", "330630"),
    ("C12345678", "850316", "330630"),
    ("C12345678", "850315", "330631"),
])
def test_pcsc_wrong_access_data_is_bac_failed(number, birth, expiry):
    with pytest.raises(BacFailed) as err:
        SimChipReader("pcsc").read_document(number, birth, expiry, timeout=0)
    assert err.value.code == "bac_failed"


def test_pcsc_guest_passport_and_removal():
    reader = SimChipReader("pcsc", {"document": PASSPORT.document_number})
    holder = reader.read_document(PASSPORT.document_number, PASSPORT.birth_date, PASSPORT.expiry_date, 0)
    assert holder.card_type == "passport" and holder.extra["nationality"] == "GBR"
    reader.remove()
    assert not reader.document_present()
    with pytest.raises(NoCard):
        reader.read_document(PASSPORT.document_number, PASSPORT.birth_date, PASSPORT.expiry_date, 0.05)
    reader.place(DEMO_TRAVEL_DOCUMENTS[1])
    holder = reader.read_document("C87654321", "881212", "340315", 0)
    assert holder.name == "孙丽" and holder.extra["endorsement_hk_trips"] == "0"


def test_pcsc_unknown_document_option_is_refused():
    with pytest.raises(ConfigError) as err:
        SimChipReader("pcsc", {"document": "X0000000"})
    assert err.value.key == "devices.pcsc.options.document"


@pytest.mark.parametrize("fault, error, state", [
    ("no_card", NoCard, DeviceState.ONLINE),
    ("card_removed_mid_read", CardRemoved, DeviceState.ONLINE),
    ("timeout", DeviceTimeout, DeviceState.HARDWARE_ERROR),
    ("garbage", DeviceProtocolError, DeviceState.HARDWARE_ERROR),
    ("offline", DeviceOffline, DeviceState.OFFLINE),
])
def test_pcsc_faults(fault, error, state):
    reader = SimChipReader("pcsc")
    reader.inject(fault)
    assert reader.status().state == state
    with pytest.raises(error):
        reader.read_document(PERMIT.document_number, PERMIT.birth_date, PERMIT.expiry_date, timeout=0)


def test_demo_travel_documents_have_valid_access_data():
    numbers = [d.document_number for d in DEMO_TRAVEL_DOCUMENTS]
    assert len(set(numbers)) == len(numbers)
    for doc in DEMO_TRAVEL_DOCUMENTS:
        assert len(doc.birth_date) == len(doc.expiry_date) == 6 and (doc.birth_date + doc.expiry_date).isdigit()
        assert doc.holder.birth_date[2:].replace("-", "") == doc.birth_date
        assert doc.holder.extra["document_number"] == doc.document_number
        assert doc.document_number not in repr(doc)


# --- receipt printer ------------------------------------------------------------------
def test_receipt_keeps_every_byte_and_each_job():
    printer = SimReceiptPrinter("receipt_printer")
    printer.print_bytes(b"\x1b@first\n")
    printer.print_bytes(b"second\n\x1dV\x00")
    assert printer.received == b"\x1b@first\nsecond\n\x1dV\x00"
    assert printer.jobs == [b"\x1b@first\n", b"second\n\x1dV\x00"]


def test_receipt_paper_counter_goes_low_then_out_by_itself():
    printer = SimReceiptPrinter("receipt_printer",
                                {"paper_length_mm": 100, "paper_low_mm": 40, "job_length_mm": 30})
    levels = []
    for i in range(3):
        printer.print_bytes(b"job%d\n" % i)
        levels.append(printer.status().supplies["paper"])
    assert levels == [SupplyState.OK, SupplyState.LOW, SupplyState.LOW]
    assert printer.paper_mm == pytest.approx(10)
    job = b"0123456789" * 10
    with pytest.raises(PaperOut):  # needs 30 mm, 10 left: a third of it comes out
        printer.print_bytes(job)
    assert printer.received.endswith(job[:33]) and not printer.received.endswith(job[:34])
    assert len(printer.jobs) == 3
    assert printer.status().supplies["paper"] == SupplyState.OUT
    assert not printer.status().usable
    with pytest.raises(PaperOut):
        printer.print_bytes(b"more\n")
    printer.refill()
    assert printer.status().supplies["paper"] == SupplyState.OK
    printer.print_bytes(b"after refill\n")
    assert printer.jobs[-1] == b"after refill\n"


def test_receipt_job_length_is_estimated_from_line_feeds():
    printer = SimReceiptPrinter("receipt_printer", {"line_mm": 4.0})
    assert printer.job_length_mm(b"a\nb\nc\n") == pytest.approx(12 + 3 * 4.0)
    assert printer.job_length_mm(b"a\n\x1bd\x05") == pytest.approx(12 + 6 * 4.0)


@pytest.mark.parametrize("fault, error, state, conditions, paper", [
    ("paper_out", PaperOut, DeviceState.ONLINE, set(), SupplyState.OUT),
    ("cover_open", CoverOpen, DeviceState.USER_ERROR, {"cover_open"}, SupplyState.OK),
    ("offline", DeviceOffline, DeviceState.OFFLINE, set(), SupplyState.UNKNOWN),
])
def test_receipt_faults_refuse_the_job(fault, error, state, conditions, paper):
    printer = SimReceiptPrinter("receipt_printer", faults={fault: True})
    st = printer.status()
    assert (st.state, set(st.conditions), st.supplies["paper"]) == (state, conditions, paper)
    with pytest.raises(error):
        printer.print_bytes(b"receipt\n")
    with pytest.raises(error):  # the primitive checks too, not only print_bytes
        printer._raw(b"receipt\n")
    assert printer.received == b"" and printer.jobs == []


def test_receipt_paper_low_still_prints():
    printer = SimReceiptPrinter("receipt_printer", faults={"paper_low": True})
    assert printer.status().supplies["paper"] == SupplyState.LOW
    assert printer.status().usable
    printer.print_bytes(b"ok\n")
    assert printer.jobs == [b"ok\n"]


def test_receipt_offline_mid_job_takes_part_of_the_bytes():
    printer = SimReceiptPrinter("receipt_printer", faults={"offline_mid_job": 1})
    job = b"A" * 50 + b"B" * 50
    with pytest.raises(DeviceOffline):
        printer.print_bytes(job)
    assert printer.received == b"A" * 50
    assert printer.jobs == []
    printer.print_bytes(b"next\n")
    assert printer.jobs == [b"next\n"]


def test_receipt_is_busy_while_printing(monkeypatch):
    printer = SimReceiptPrinter("receipt_printer")
    seen = []
    monkeypatch.setattr(printer, "_pause", lambda fraction=1.0: seen.append(printer.status().state))
    printer.print_bytes(b"x\n")
    assert seen == [DeviceState.BUSY]


def test_receipt_concurrent_jobs_stay_whole():
    printer = SimReceiptPrinter("receipt_printer", {"job_length_mm": 1.0})
    payloads = [b"<job %02d-%02d>" % (t, i) + bytes(range(32)) * 4 for t in range(8) for i in range(25)]
    threads = [threading.Thread(target=lambda t=t: [printer.print_bytes(p) for p in payloads[t * 25:(t + 1) * 25]])
               for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(printer.jobs) == sorted(payloads)
    assert printer.received == b"".join(printer.jobs)  # no job interleaved with another
    assert printer.paper_mm == pytest.approx(50000 - len(payloads))


# --- A4 printer -----------------------------------------------------------------------
def test_a4_copies_the_pdf_into_the_tray_with_a_job_id(tmp_path, make_pdf):
    printer = SimA4Printer("a4_printer", {"output_dir": str(tmp_path / "tray"), "sheets": 10})
    pdf = make_pdf(2)
    job_id = printer.print_pdf(pdf, "户籍证明")
    out = tmp_path / "tray" / f"{job_id}.pdf"
    assert out.read_bytes() == pdf.read_bytes()
    assert printer.sheets == 8
    assert [(j.job_id, j.pages, j.title) for j in printer.jobs] == [(job_id, 2, "户籍证明")]
    assert printer.print_pdf(make_pdf(1), "second") != job_id
    assert "户籍证明" not in repr(printer.jobs[0])


def test_a4_tray_keeps_only_the_newest_documents(tmp_path, make_pdf):
    tray = tmp_path / "tray"
    printer = SimA4Printer("a4_printer", {"output_dir": str(tray), "sheets": 50, "keep": 3})
    pdf = make_pdf(1)
    ids = [printer.print_pdf(pdf, f"doc {n}") for n in range(5)]
    assert sorted(p.name for p in tray.iterdir()) == sorted(f"{i}.pdf" for i in ids[-3:])
    unlimited = SimA4Printer("a4_printer", {"output_dir": str(tmp_path / "all"), "sheets": 50, "keep": 0})
    for _ in range(5):
        unlimited.print_pdf(pdf, "doc")
    assert len(list((tmp_path / "all").iterdir())) == 5


def test_a4_sheet_counter_goes_low_then_out(tmp_path, make_pdf):
    tray = tmp_path / "tray"
    printer = SimA4Printer("a4_printer", {"output_dir": str(tray), "sheets": 5, "sheets_low": 2})
    printer.print_pdf(make_pdf(2), "a")
    assert printer.status().supplies["paper"] == SupplyState.OK
    printer.print_pdf(make_pdf(2), "b")
    assert printer.status().supplies["paper"] == SupplyState.LOW
    before = sorted(tray.iterdir())
    assert len(before) == 2
    with pytest.raises(PaperOut):  # two pages, one sheet: nothing counts as printed
        printer.print_pdf(make_pdf(2), "c")
    assert sorted(tray.iterdir()) == before
    assert printer.status().supplies["paper"] == SupplyState.OUT
    printer.refill()
    assert printer.sheets == 5 and printer.status().supplies["paper"] == SupplyState.OK


@pytest.mark.parametrize("fault, error, state, conditions", [
    ("paper_out", PaperOut, DeviceState.ONLINE, set()),
    ("jam", PrintFailed, DeviceState.USER_ERROR, {"jam"}),
    ("cover_open", CoverOpen, DeviceState.USER_ERROR, {"cover_open"}),
    ("offline", DeviceOffline, DeviceState.OFFLINE, set()),
    ("reject", PrintFailed, DeviceState.ONLINE, set()),
    ("timeout", DeviceTimeout, DeviceState.HARDWARE_ERROR, set()),
])
def test_a4_faults_leave_nothing_in_the_tray(fault, error, state, conditions, tmp_path, make_pdf):
    printer = SimA4Printer("a4_printer", {"output_dir": str(tmp_path / "tray")}, {fault: True})
    st = printer.status()
    assert (st.state, set(st.conditions)) == (state, conditions)
    with pytest.raises(error):
        printer.print_pdf(make_pdf(1), "t")
    assert not (tmp_path / "tray").exists() or not list((tmp_path / "tray").iterdir())
    assert printer.jobs == []
    printer.clear()
    assert printer.print_pdf(make_pdf(1), "t")


def test_a4_paper_low_fault_still_prints(tmp_path, make_pdf):
    printer = SimA4Printer("a4_printer", {"output_dir": str(tmp_path)}, {"paper_low": True})
    assert printer.status().supplies["paper"] == SupplyState.LOW
    printer.print_pdf(make_pdf(1), "t")
    assert len(printer.jobs) == 1


def test_a4_refuses_a_file_that_is_not_a_pdf(tmp_path):
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"GIF89a not a pdf")
    printer = SimA4Printer("a4_printer", {"output_dir": str(tmp_path / "tray")})
    with pytest.raises(PrintFailed):
        printer.print_pdf(bad, "t")
    truncated = tmp_path / "y.pdf"
    truncated.write_bytes(b"%PDF-1.4\n garbage")
    with pytest.raises(PrintFailed):
        printer.print_pdf(truncated, "t")
    assert printer.jobs == [] and printer.sheets == 250


def test_a4_without_output_dir_uses_a_temporary_tray(make_pdf):
    printer = SimA4Printer("a4_printer")
    job = printer.print_pdf(make_pdf(1), "t")
    try:
        assert (printer.output_dir / f"{job}.pdf").is_file()
        assert printer.output_dir.name.startswith("kiosk-paper-tray-")
    finally:
        shutil.rmtree(printer.output_dir)


# --- scanner --------------------------------------------------------------------------
def test_scanner_delivers_queued_codes_in_order():
    scanner = SimScanner("scanner", {"codes": ["first", "second"]})
    scanner.feed("third")
    assert [scanner.scan(0) for _ in range(3)] == ["first", "second", "third"]
    assert scanner.pending() == 0
    with pytest.raises(DeviceTimeout):
        scanner.scan(timeout=0.05)


def test_scanner_waits_for_a_code():
    scanner = SimScanner("scanner")
    thread, box = _in_thread(lambda: scanner.scan(timeout=30))
    scanner.feed("QR:verify:abc")
    thread.join(30)
    assert box["result"] == "QR:verify:abc"


@pytest.mark.parametrize("fault, error, state", [
    ("timeout", DeviceTimeout, DeviceState.HARDWARE_ERROR),
    ("offline", DeviceOffline, DeviceState.OFFLINE),
])
def test_scanner_faults(fault, error, state):
    scanner = SimScanner("scanner", {"codes": ["kept"]}, {fault: True})
    assert scanner.status().state == state
    with pytest.raises(error):
        scanner.scan(0)
    scanner.clear()
    assert scanner.scan(0) == "kept"


# --- camera (its sequences: test_camera_sim.py) --------------------------------------
@pytest.mark.parametrize("fault, error, state", [
    ("timeout", DeviceTimeout, DeviceState.HARDWARE_ERROR),
    ("offline", DeviceOffline, DeviceState.OFFLINE),
])
def test_camera_faults(fault, error, state):
    camera = SimCamera("camera", faults={fault: True})
    assert camera.status().state == state
    with pytest.raises(error):
        camera.capture()
