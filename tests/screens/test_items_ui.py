"""Items end to end through the touch UI: one of each kind, the flagships, their refusals, bad input.

Each group of flows is one ``kiosk demo`` process (its own fresh backend simulator), run
the way an operator runs it; the groups run side by side. The tests read summary.json and
the artefacts: receipts decoded from their ESC/POS bytes, PDFs through pypdf, screenshots.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from PIL import Image
from pypdf import PdfReader

from print_templates.escpos_decode import decode

# The three demo processes share the machine: on a loaded CI box they need more than the
# default per-test timeout (about 3-4 minutes on an idle 2-core machine).
pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(900)]

# Short timeouts so a resident walking away or a payment left unpaid ends quickly.
CONFIG = """\
[ui]
idle_timeout_s = 40
idle_warning_s = 20

[payment]
timeout_s = 10
poll_interval_s = 1.0
"""
GROUPS: dict[str, list[str]] = {
    # One item of each kind (certificate H01, verify S02, query T01, payment T03, application S05,
    # appointment G01, report G05, guide S17) and the flagships, on their happy paths.
    "happy1": ["H01", "S02", "H02", "H03", "H04", "H16", "S01", "T01", "T02", "T03"],  # H16: 孙丽 (see kiosk/demo/people.py)
    # S09: the scanner cannot read the passport's data page; the resident types its details.
    # T05: a query whose resident reads the results and does not ask for the slip.
    "happy2": ["H19", "H20", "H21", "S05", "E01", "S09:mrz=typed", "G05", "G01", "S17", "T05:slip=no"],
    # The flagships' refusals, bad input, a payment left unpaid and a resident walking away.
    "refusals": ["S01:ZHANG", "S01:ZHAO", "S01:LIU", "T02:violation=WF0002",
                 "H02:relative_name=张伟:relative_id_number=370104199001013459", "H21:WANG", "H01:CHEN",
                 "T17:own_plate=ABC123", "H05:phone=12345", "H15:lost_date=2026-02-30",
                 "H12:CHEN:pay=no", "S01:leave=form", "E01:mrz=typed:document_number=C12345679"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Every group's demo run, started together; the output folder per group."""
    base = tmp_path_factory.mktemp("items-ui")
    config = base / "kiosk.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    procs = {}
    for name, flows in GROUPS.items():
        out = base / name
        log = (base / f"{name}.log").open("w")
        procs[name] = (subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "--config", str(config), "demo", "--out", str(out),
             "--screenshots", "ends", "--flow", *flows], cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    try:
        for name, (proc, log) in procs.items():
            proc.wait(timeout=840)
            log.close()
        yield {name: base / name for name in GROUPS}
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def flows_of(out: Path) -> dict[str, dict[str, Any]]:
    """summary.json's flows by their script (item, or item:person for scripted ones)."""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {f["item"] + (":" + f["person"] if f["person"] else ""): f for f in summary["flows"]}


def flow(runs: dict[str, Path], group: str, item: str, n: int = 0) -> dict[str, Any]:
    """The ``n``-th flow of ``item`` in ``group``'s run."""
    summary = json.loads((runs[group] / "summary.json").read_text(encoding="utf-8"))
    matches = [f for f in summary["flows"] if f["item"] == item]
    assert len(matches) > n, f"{group}: no run of {item} in {[f['item'] for f in summary['flows']]}"
    return matches[n]


def receipt_text(out: Path, record: dict[str, Any]) -> str:
    """Every receipt and slip of the flow, decoded from its ESC/POS bytes."""
    return "\n".join(decode((out / r).read_bytes()).text for r in record["receipts"])


def pdf_text(out: Path, record: dict[str, Any]) -> str:
    return "\n".join(page.extract_text() for p in record["documents"] for page in PdfReader(out / p).pages)


def display(record: dict[str, Any], label: str) -> str:
    """The value of the result line ``label`` (English) shown on the done screen."""
    values = [v for lbl, v in record["display"] if lbl == label]
    assert values, (label, record["display"])
    return values[0]


def completed(runs: dict[str, Path], group: str, item: str) -> dict[str, Any]:
    record = flow(runs, group, item)
    assert (record["outcome"], record["reason"]) == ("completed", ""), record
    return record


# --- one of each kind and the flagships --------------------------------------------------
def test_certificates_print_the_household_record(runs: dict[str, Path]) -> None:
    out = runs["happy1"]
    h01 = completed(runs, "happy1", "H01")
    assert h01["touches_after_identity"] <= 4
    household = display(h01, "Household number")
    for text in (pdf_text(out, h01), receipt_text(out, h01)):
        assert household in text and h01["verification_codes"][0] in text
    h02 = completed(runs, "happy1", "H02")
    assert "孙丽" in pdf_text(out, h02) and "孙丽" in receipt_text(out, h02)  # the relative on record
    h03 = completed(runs, "happy1", "H03")
    assert h03["person"] == "LI" and "张建国" in pdf_text(out, h03)  # her late husband's deregistration
    h04 = completed(runs, "happy1", "H04")
    assert "李秀芳" in pdf_text(out, h04)  # the former name
    h16 = completed(runs, "happy1", "H16")
    assert h16["documents"] and h16["verification_codes"][0] in pdf_text(out, h16)


def test_verify_checks_the_code_printed_earlier_in_the_run(runs: dict[str, Path]) -> None:
    s02 = completed(runs, "happy1", "S02")
    h01 = flow(runs, "happy1", "H01")
    shown = "\n".join(s02["shown"] + [v for _l, v in s02["display"]])
    # The summary's display is in English (a worded value's value_en): the document found is H01's certificate.
    assert ["Result", "genuine"] in s02["display"], s02
    assert h01["verification_codes"][0] in shown or ["Document", "Household registration certificate"] in s02["display"]


def test_no_criminal_record_certificate_after_the_face_check(runs: dict[str, Path]) -> None:
    out = runs["happy1"]
    s01 = completed(runs, "happy1", "S01")
    text = pdf_text(out, s01)
    assert "无犯罪记录" in text and "王小明" in text and s01["verification_codes"][0] in text


def test_traffic_query_handling_and_fine_payment(runs: dict[str, Path]) -> None:
    out = runs["happy1"]
    t01 = completed(runs, "happy1", "T01")
    assert "鲁A12345" in "\n".join(t01["shown"])  # the violation list on screen, by plate
    t02 = completed(runs, "happy1", "T02")
    decision = pdf_text(out, t02)
    assert "鲁A12345" in decision and t02["verification_codes"][0] in decision
    t03 = completed(runs, "happy1", "T03")
    paid = receipt_text(out, t03)
    assert t03["reference"] and t03["reference"] in paid
    assert any(v and v in paid for _l, v in t03["display"])  # the decision paid, item by item


def test_residence_registration_permit_and_endorsement(runs: dict[str, Path]) -> None:
    out = runs["happy2"]
    h19 = completed(runs, "happy2", "H19")
    assert h19["person"] == "LIU" and "文化东路50号" in receipt_text(out, h19)
    for item in ("H19", "H20", "H21"):
        record = completed(runs, "happy2", item)
        assert record["reference"] and record["reference"] in receipt_text(out, record)  # the tracking number


def test_ebike_registration_prints_the_plate_issued(runs: dict[str, Path]) -> None:
    s05 = completed(runs, "happy2", "S05")
    plates = [v for label, v in s05["display"] if "plate" in label.lower()]
    assert plates and plates[0] in receipt_text(runs["happy2"], s05)


def test_permit_endorsement_reads_the_chip_pays_and_shows_what_remains(runs: dict[str, Path]) -> None:
    e01 = completed(runs, "happy2", "E01")
    assert e01["person"] == "WANG"
    slip = receipt_text(runs["happy2"], e01)
    remaining = [v for label, v in e01["display"] if "still hold" in label.lower() or "remain" in label.lower()]
    assert remaining and remaining[0] in slip  # endorsements the chip can still hold
    assert "1B" in slip and e01["reference"] in slip


def test_foreign_guest_registration_from_the_passport_chip(runs: dict[str, Path]) -> None:
    s09 = completed(runs, "happy2", "S09")
    assert s09["person"] == "SMITH"
    slip = receipt_text(runs["happy2"], s09)
    # The nationality read from the chip, opened with the details the resident typed.
    assert s09["reference"] in slip and "GBR" in slip
    assert "住宿期间" in slip and s09["display"]


def test_a_query_prints_nothing_unless_the_slip_is_asked_for(runs: dict[str, Path]) -> None:
    t05 = completed(runs, "happy2", "T05")
    assert t05["display"] and not t05["receipts"] and not t05["documents"]
    t01 = completed(runs, "happy1", "T01")  # the same kind of item, slip asked for
    assert len(t01["receipts"]) == 1 and "鲁A12345" in receipt_text(runs["happy1"], t01)


def test_appointment_slot_rating_and_guide(runs: dict[str, Path]) -> None:
    g01 = completed(runs, "happy2", "G01")
    slot = [v for label, v in g01["display"] if "slot" in label.lower() or "time" in label.lower()]
    assert slot and slot[0] in receipt_text(runs["happy2"], g01)
    g05 = completed(runs, "happy2", "G05")
    assert g05["display"] and not g05["receipts"]  # rated on screen, nothing printed
    s17 = flow(runs, "happy2", "S17")
    assert s17["outcome"] == "completed" and any("办事指南" in t or "材料" in t for t in s17["shown"])


# --- refusals: the rule in reason, a screenshot that says where to go --------------------
def refused(runs: dict[str, Path], item: str, rule: str, n: int = 0) -> dict[str, Any]:
    record = flow(runs, "refusals", item, n)
    assert (record["outcome"], record["reason"]) == ("refused", rule), record
    shots = [s for s in record["screenshots"] if s.endswith("-error.png")]
    assert shots, record["screenshots"]
    with Image.open(runs["refusals"] / shots[-1]) as image:
        assert image.size == (1080, 1920) and len(image.convert("L").resize((54, 96)).getcolors(5000) or ()) > 4
    shown = "\n".join(record["shown"])
    assert "请前往" in shown, shown  # where to go, in Chinese
    return record


@pytest.mark.parametrize("item, n, rule", [
    ("S01", 0, "criminal_record_found"), ("S01", 1, "case_under_review"),
    ("S01", 2, "face_mismatch_send_to_counter"), ("T02", 0, "violation_needs_counter"),
    ("H02", 0, "kinship_not_on_record"), ("H21", 0, "no_residence_permit"), ("H01", 0, "id_card_expired"),
])
def test_flagship_refusals_say_why_and_where(runs: dict[str, Path], item: str, n: int, rule: str) -> None:
    record = refused(runs, item, rule, n)
    assert record["where"], record  # the refusal names where to go instead
    assert not record["documents"] and not record["receipts"]


def test_face_check_fails_three_times_then_the_counter(runs: dict[str, Path]) -> None:
    record = flow(runs, "refusals", "S01", 2)
    assert record["person"] == "LIU"
    faces = [s for s in record["screenshots"] if s.endswith("-face.png")]
    assert len(faces) == 2  # the two misses with tries left; the third goes to the counter
    assert record["reason"] == "face_mismatch_send_to_counter"


# --- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("item, field", [("T17", "own_plate"), ("H05", "phone"), ("H15", "lost_date")])
def test_a_bad_value_is_named_beside_its_field_and_the_form_stays(runs: dict[str, Path], item: str,
                                                                  field: str) -> None:
    record = flow(runs, "refusals", item)
    assert record["outcome"] == "input_rejected" and record["reason"] == field, record
    assert record["message"] and record["message"] in record["shown"]  # shown on the form itself
    assert any(s.endswith("-form.png") for s in record["screenshots"])
    assert not record["receipts"] and not record["documents"]


def test_mistyped_travel_document_details_keep_the_chip_shut_and_say_so(runs: dict[str, Path]) -> None:
    record = flow(runs, "refusals", "E01")
    assert (record["outcome"], record["reason"]) == ("input_rejected", "travel_details"), record
    assert "请核对证件号码" in record["message"] and record["message"] in record["shown"]
    assert any(s.endswith("-travel_entry.png") for s in record["screenshots"])
    assert not record["receipts"] and not record["documents"] and not record["reference"]


def test_an_unpaid_order_times_out_and_nothing_is_charged(runs: dict[str, Path]) -> None:
    record = flow(runs, "refusals", "H12")
    # The workflow's own deadline ends it (failed, payment_timeout), or the screen's countdown
    # cancels first (cancelled): either way the resident reads that nothing was charged.
    assert (record["outcome"], record["reason"]) in (("failed", "payment_timeout"), ("cancelled", "cancel")), record
    assert any("没有被扣款" in t or "未扣任何费用" in t for t in record["shown"]), record["shown"]
    assert not record["receipts"] and not record["documents"]
    assert any(s.endswith("-payment.png") for s in record["screenshots"])


def test_walking_away_mid_flow_wipes_the_session(runs: dict[str, Path]) -> None:
    record = flow(runs, "refusals", "S01", 3)
    assert (record["outcome"], record["reason"]) == ("cancelled", "timeout"), record
    assert record["shown"] == ["session_ended=True", "identity_kept=False"]
