"""Every item's backend operation through the live simulator over real, signed HTTP.

Each happy path sends the catalog-validated form of its item and asserts an item-specific
value that comes from the seeded records (the violation, the plate issued, the slot booked,
the tracking number created); each flagship refusal asserts its rule code. The simulator is
the module-wide simulator of tests/conftest.py (``sim``: a fresh seeded database on a
free loopback port, this module's own, since the records change as items run), so the tests
of this file run in file order and build on each other where the kiosk would (a renewed
permit can no longer be applied for, a paid fine is not offered again).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.errors import BackendRefused
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.db import now
from kiosk.backend_sim.server import SimServer
from kiosk.services.catalog import Catalog

WANG = "37010219850315123X"
SUN = "370102198812128906"
SIQI = "370102200002296780"
LI = "370103196208082347"
ZHANG = "370104199001013459"
LIU = "410105197805204568"
CHEN = "370112199511115674"
ZHAO = "370103195507127897"
ZIXUAN = "370102201306010117"  # seeded by the household operations: 王小明's son
JIANGUO = "370103195604201315"  # 李秀英's late husband
TODAY = now().date()  # the simulator's (Beijing) calendar day
CATALOG = Catalog.load()


@pytest.fixture(scope="module")
def api(sim: SimServer) -> BackendClient:
    """A signed demo-terminal client of the module's simulator."""
    return BackendClient(sim.url, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(), DEMO_BACKEND_PUBLIC_KEY,
                         connect_timeout=2.0, read_timeout=10.0, retries=0, backoff=0.0)


def pay(sim: SimServer, order_id: str) -> None:
    """The resident's phone pays the order (the simulator's loopback control)."""
    requests.post(f"{sim.url}/api/v1/sim/payments/{order_id}/pay", timeout=5).raise_for_status()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def first_option(api: BackendClient, item_id: str, field_name: str, id_number: str | None,
                 fields: dict[str, Any] | None = None) -> dict[str, Any]:
    item = CATALOG.get(item_id)
    options = api.lookup(item.field(field_name).source, item_id, id_number, fields or {})["options"]
    assert options, f"{item_id}: no options for {field_name}"
    return options[0]


def run(api: BackendClient, sim: SimServer, item_id: str, id_number: str | None, fields: dict[str, Any],
        *, pay_fen: int | None = None) -> dict[str, Any]:
    """Validate the form with the item's own field rules, pay when asked, and run the item's operation."""
    item = CATALOG.get(item_id)
    values = item.validate(fields, today=TODAY)
    order_id = None
    if pay_fen is not None:
        order = api.create_order(item_id, pay_fen, f"test-{item_id}", item.name_en)
        pay(sim, order["order_id"])
        order_id = order["order_id"]
    return api.operate(item.operation, item_id, id_number, values, payment_order_id=order_id)


def refused(api: BackendClient, sim: SimServer, item_id: str, id_number: str | None, fields: dict[str, Any],
            **kw: Any) -> str:
    with pytest.raises(BackendRefused) as info:
        run(api, sim, item_id, id_number, fields, **kw)
    assert info.value.message_zh and info.value.message_en
    return info.value.rule


def shown(result: dict[str, Any]) -> str:
    return "\n".join(f"{d['label_en']}: {d['value']}" for d in result["display"])


def fixed_fee(item_id: str, values: dict[str, str] | None = None) -> int:
    amount = CATALOG.get(item_id).amount_fen(values or {})
    assert amount is not None
    return amount


PHONE = "138 0531 0001"


def test_every_catalog_operation_and_lookup_is_served(api: BackendClient) -> None:
    from kiosk.backend_sim import registry

    registry.discover()
    assert {i.operation for i in CATALOG} <= set(registry.OPERATIONS)
    assert {f.source for i in CATALOG for f in i.fields if f.source} <= set(registry.LOOKUPS)


# --- H: household and ID -------------------------------------------------------------------------
def test_h01_household_certificate_from_the_household_record(api, sim) -> None:
    r = run(api, sim, "H01", WANG, {"purpose": "employment"})
    doc = r["document"]
    assert doc["doc_type"] == "household_certificate"
    assert doc["content"]["household_id"] == "370102-010188"
    assert doc["content"]["relation_to_head"] == "户主"
    assert "370102-010188" in shown(r)


def test_h01_certificate_verifies_by_code_with_s02(api, sim) -> None:
    code = run(api, sim, "H01", SUN, {"purpose": "school"})["document"]["verification_code"]
    good = run(api, sim, "S02", None, {"verification_code": code.replace("-", "").lower()})
    assert good["data"]["valid"] is True and good["data"]["doc_type"] == "household_certificate"
    assert "孙*" in shown(good)
    bad = run(api, sim, "S02", None, {"verification_code": "ABCD-EFGH-JKLM-NPQR"})
    assert bad["data"]["valid"] is False


def test_h02_kinship_certificate_for_a_recorded_relationship(api, sim) -> None:
    r = run(api, sim, "H02", WANG, {"relative_name": "王思琪", "relative_id_number": SIQI, "purpose": "other"})
    assert r["document"]["content"]["relationship"] == "父女"
    r = run(api, sim, "H02", WANG, {"relative_name": "孙丽", "relative_id_number": SUN, "purpose": "other"})
    assert r["document"]["content"]["relationship"] == "夫妻"


def test_h02_refuses_a_relationship_not_in_the_register(api, sim) -> None:
    rule = refused(api, sim, "H02", WANG, {"relative_name": "张伟", "relative_id_number": ZHANG, "purpose": "other"})
    assert rule == "kinship_not_on_record"
    assert refused(api, sim, "H02", WANG, {"relative_name": "王丽", "relative_id_number": SUN,
                                          "purpose": "other"}) == "relative_identity_mismatch"


def test_h03_deregistration_certificate_only_when_registered(api, sim) -> None:
    r = run(api, sim, "H03", LI, {"deceased_name": "张建国", "deceased_id_number": JIANGUO})
    assert r["document"]["content"]["death_date"] == "2023-06-18"
    assert r["document"]["content"]["deregistration_reason"] == "死亡"
    assert refused(api, sim, "H03", LI, {"deceased_name": "赵国强", "deceased_id_number": ZHAO}) \
        == "deregistration_not_registered"
    assert refused(api, sim, "H03", WANG, {"deceased_name": "张建国", "deceased_id_number": JIANGUO}) \
        == "not_close_relative"


def test_h04_former_name_certificate(api, sim) -> None:
    r = run(api, sim, "H04", LI, {"purpose": "property"})
    assert "李秀芳" in shown(r) and r["document"]["content"]["former_names"][0]["former_name"] == "李秀芳"
    assert refused(api, sim, "H04", WANG, {"purpose": "property"}) == "no_former_name_on_record"


def test_h05_to_h07_applications_open_tracked_cases(api, sim) -> None:
    h05 = run(api, sim, "H05", WANG, {"other_name": "王晓明", "other_document": "diploma", "phone": PHONE})
    assert h05["reference"].startswith("TY") and h05["data"]["case_number"] == h05["reference"]
    h06 = run(api, sim, "H06", SIQI, {"new_name": "王思齐", "reason": "duplicate", "phone": PHONE})
    assert h06["reference"].startswith("XM") and "王思齐" in shown(h06)
    assert refused(api, sim, "H06", SIQI, {"new_name": "王思源", "reason": "duplicate", "phone": PHONE}) == "case_pending"
    h07 = run(api, sim, "H07", ZHANG, {"correct_birth_date": "1990-01-02", "evidence": "birth_certificate",
                                       "phone": PHONE})
    assert "1990-01-01" in shown(h07) and h07["reference"].startswith("CS")


def test_h08_ethnicity_change_for_a_minor_child_only(api, sim) -> None:
    r = run(api, sim, "H08", WANG, {"subject_name": "王子轩", "subject_id_number": ZIXUAN, "new_ethnicity": "11",
                                    "phone": PHONE})
    assert r["reference"].startswith("MZ") and "王子轩" in shown(r)
    assert refused(api, sim, "H08", WANG, {"subject_name": "王小明", "subject_id_number": WANG,
                                          "new_ethnicity": "11", "phone": PHONE}) == "ethnicity_change_age"


def test_h09_transfer_progress(api, sim) -> None:
    r = run(api, sim, "H09", LIU, {})
    assert r["data"]["cases"] == [{"case_number": "QY20250310001", "status": "Under review at the place of origin"}]


def test_h10_birth_registration_books_a_slot(api, sim) -> None:
    slot = first_option(api, "H10", "slot", WANG)
    r = run(api, sim, "H10", WANG, {"birth_certificate_number": "q370123456", "child_name": "王小雨",
                                    "slot": slot["value"], "phone": PHONE})
    assert r["data"]["starts_at"].replace("T", "-").replace(":", "")[-4:] == slot["value"][-4:]
    assert r["reference"].startswith("YY")
    assert refused(api, sim, "H10", WANG, {"birth_certificate_number": "Q370000001", "child_name": "王小雨",
                                          "slot": slot["value"], "phone": PHONE}) == "birth_already_registered"


def test_h11_booklet_replacement_by_the_head_only(api, sim) -> None:
    r = run(api, sim, "H11", WANG, {"reason": "lost", "delivery": "counter", "phone": PHONE})
    assert r["reference"].startswith("HK") and "370102-010188" in shown(r)
    assert refused(api, sim, "H11", SUN, {"reason": "lost", "delivery": "counter", "phone": PHONE}) \
        == "not_household_head"


def test_h12_renewal_needs_the_window_and_the_fee(api, sim) -> None:
    fee = fixed_fee("H12")
    assert fee == 2000
    form = {"delivery": "counter", "phone": PHONE}
    assert refused(api, sim, "H12", CHEN, form) == "payment_required"
    r = run(api, sim, "H12", CHEN, form, pay_fen=fee)
    assert r["reference"].startswith("SF") and r["data"]["amount_fen"] == 2000
    assert refused(api, sim, "H12", LIU, form, pay_fen=fee) == "id_renewal_too_early"
    assert refused(api, sim, "H12", LI, form, pay_fen=fee) == "id_card_long_term"


def test_paid_operations_check_the_amount_and_use_an_order_once(api, sim) -> None:
    form = CATALOG.get("H13").validate({"damage": "chip", "delivery": "counter", "phone": PHONE}, today=TODAY)
    assert refused(api, sim, "H13", WANG, dict(form), pay_fen=1500) == "payment_amount_mismatch"
    unpaid = api.create_order("H13", 2000, "test-unpaid", "unpaid")
    with pytest.raises(BackendRefused) as info:
        api.operate("id_card_damaged_replacement", "H13", WANG, form, payment_order_id=unpaid["order_id"])
    assert info.value.rule == "payment_not_paid"
    order = api.create_order("H13", 2000, "test-once", "once")
    pay(sim, order["order_id"])
    first = api.operate("id_card_damaged_replacement", "H13", WANG, form, payment_order_id=order["order_id"])
    assert first["reference"].startswith("SF")
    with pytest.raises(BackendRefused) as info:
        api.operate("id_card_damaged_replacement", "H13", ZHANG, form, payment_order_id=order["order_id"])
    assert info.value.rule == "payment_already_used"
    progress = run(api, sim, "H17", ZHANG, {})
    assert progress["data"]["cases"] == []  # the reused order created nothing for 张伟


def test_h14_h15_lost_card_by_number_and_name(api, sim) -> None:
    r = run(api, sim, "H15", None, {"id_number": ZHANG, "name": "张伟", "lost_date": day(-2), "phone": PHONE})
    assert r["reference"].startswith("GS") and "3701**********3459" in shown(r)
    assert refused(api, sim, "H15", None, {"id_number": ZHANG, "name": "张伟", "lost_date": day(-2),
                                          "phone": PHONE}) == "already_reported_lost"
    assert refused(api, sim, "H15", None, {"id_number": ZHANG, "name": "张三", "lost_date": day(-2),
                                          "phone": PHONE}) == "identity_mismatch"
    r = run(api, sim, "H14", None, {"id_number": ZHAO, "name": "赵国强", "lost_date": day(-1), "delivery": "post",
                                    "postal_address": "济南市市中区英雄山路20号", "phone": PHONE}, pay_fen=fixed_fee("H14"))
    assert r["reference"].startswith("SF")


def test_h16_to_h18_card_in_progress_fee_and_temporary_certificate(api, sim) -> None:
    progress = run(api, sim, "H17", SUN, {})
    assert {"case_number": "SF20240001", "status": "Awaiting the fee"} in progress["data"]["cases"]
    option = first_option(api, "H18", "application", SUN)
    assert option["value"] == "SF20240001" and option["amount_fen"] == 2000
    item = CATALOG.get("H18")
    amount = item.amount_fen({"application": option["value"]}, {"application": [option]})
    paid = run(api, sim, "H18", SUN, {"application": option["value"]}, pay_fen=amount)
    assert paid["data"] == {"application_number": "SF20240001", "amount_fen": 2000}
    assert api.lookup("id_card_fees", "H18", SUN, {})["options"] == []
    temp = run(api, sim, "H16", SUN, {"purpose": "rail"})
    assert temp["document"]["content"]["application_number"] == "SF20240001"
    assert temp["document"]["content"]["valid_until"] == day(30)
    assert refused(api, sim, "H16", SIQI, {"purpose": "rail"}) == "no_id_card_application"


def test_h19_to_h22_residence(api, sim) -> None:
    lease = {"lease_contract_number": "ZL202401050001"}
    h19 = run(api, sim, "H19", LIU, {**lease, "address": "山东省济南市历下区文化东路50号2单元301室",
                                     "move_in_date": day(-3), "phone": PHONE})
    assert h19["reference"].startswith("JZDJ") and h19["data"]["resident_since"] < day(-365)
    assert refused(api, sim, "H19", WANG, {**lease, "address": "济南市历下区文化东路50号", "move_in_date": day(-3),
                                          "phone": PHONE}) == "local_household"
    assert refused(api, sim, "H19", LIU, {"lease_contract_number": "ZL209901010001", "address": "济南市历下区某路1号",
                                         "move_in_date": day(-3), "phone": PHONE}) == "lease_not_found"
    h20 = run(api, sim, "H20", LIU, {**lease, "basis": "residence", "delivery": "counter", "phone": PHONE})
    assert h20["reference"].startswith("JZZ")
    h22 = run(api, sim, "H22", LIU, {})
    assert h22["data"]["total_points"] == 116
    h21 = run(api, sim, "H21", LIU, {**lease, "phone": PHONE})
    assert h21["data"]["valid_to"] > day(360)
    assert refused(api, sim, "H20", LIU, {**lease, "basis": "residence", "delivery": "counter", "phone": PHONE}) \
        == "permit_exists"
    assert refused(api, sim, "H21", LIU, {**lease, "phone": PHONE}) == "endorsement_too_early"
    assert refused(api, sim, "H21", ZHANG, {**lease, "phone": PHONE}) == "no_residence_permit"
    assert refused(api, sim, "H22", WANG, {}) == "no_residence_permit"


# --- S: public order and community ---------------------------------------------------------------
def test_s01_no_criminal_record_certificate_and_its_refusals(api, sim) -> None:
    r = run(api, sim, "S01", WANG, {"purpose": "visa"})
    content = r["document"]["content"]
    assert r["document"]["doc_type"] == "no_criminal_record_certificate"
    assert "未发现王小明" in content["statement"] and content["purpose"] == "签证申请"
    assert refused(api, sim, "S01", ZHANG, {"purpose": "employment"}) == "criminal_record_found"
    assert refused(api, sim, "S01", ZHAO, {"purpose": "employment"}) == "case_under_review"
    with pytest.raises(BackendRefused) as info:  # the resident is told where to go instead
        run(api, sim, "S01", ZHANG, {"purpose": "employment"})
    assert "派出所" in info.value.where_zh and "police station" in info.value.where_en


def test_s03_s04_dogs(api, sim) -> None:
    form = {"dog_name": "旺财", "breed": "corgi", "color": "黄白", "dog_birth_date": "2024-02-01",
            "vaccine_cert_number": "MY2024000123", "phone": PHONE}
    r = run(api, sim, "S03", WANG, form)
    assert r["data"]["tag_number"].startswith("JNQ") and "柯基犬" in shown(r)
    assert refused(api, sim, "S03", SUN, form) == "dog_limit_reached"  # same household
    assert refused(api, sim, "S03", ZHANG, {**form, "breed": "pit_bull"}) == "dog_breed_banned"
    dog = first_option(api, "S04", "dog", LI)
    assert dog["value"] == "JNQ202300128"
    r = run(api, sim, "S04", LI, {"dog": dog["value"], "vaccination_date": day(-10),
                                  "vaccine_cert_number": "MY2026000456"})
    assert r["data"]["inspected_until"] > day(365)
    assert refused(api, sim, "S04", LI, {"dog": dog["value"], "vaccination_date": day(-400),
                                        "vaccine_cert_number": "MY2025000456"}) == "vaccine_expired"


def test_s05_ebike_registration_issues_a_plate(api, sim) -> None:
    form = {"frame_number": "yd2024a0012345", "invoice_number": "24370000123456", "color": "white", "phone": PHONE}
    r = run(api, sim, "S05", WANG, form)
    plate = r["data"]["plate"]
    assert plate.startswith("济南A") and plate in shown(r) and "雅迪" in shown(r)
    assert plate in [o["value"] for o in api.lookup("my_ebikes", "S06", WANG, {})["options"]]
    assert refused(api, sim, "S05", WANG, form) == "ebike_already_registered"
    assert refused(api, sim, "S05", WANG, {**form, "frame_number": "XJ2016B0098765",
                                          "invoice_number": "16370000111111"}) == "ebike_not_compliant"
    assert refused(api, sim, "S05", WANG, {**form, "frame_number": "TL2024D0033221"}) == "invoice_mismatch"
    assert refused(api, sim, "S05", WANG, {**form, "frame_number": "ZZ0000000000"}) == "ebike_not_in_catalog"


def test_s06_s07_ebike_transfer_and_theft(api, sim) -> None:
    r = run(api, sim, "S07", WANG, {"ebike_plate": "济南A00017", "stolen_on": day(-1), "place": "历下区泉城路地铁站",
                                    "phone": PHONE})
    assert r["reference"].startswith("BA") and "泉城路派出所" in shown(r)
    assert refused(api, sim, "S06", WANG, {"ebike_plate": "济南A00017", "new_owner_name": "孙丽",
                                          "new_owner_id_number": SUN, "phone": PHONE}) == "ebike_reported_stolen"
    r = run(api, sim, "S06", WANG, {"ebike_plate": "济南A00018", "new_owner_name": "孙丽",
                                    "new_owner_id_number": SUN, "phone": PHONE})
    assert r["data"]["plate"] == "济南A00018"
    assert "济南A00018" in [o["value"] for o in api.lookup("my_ebikes", "S06", SUN, {})["options"]]
    assert refused(api, sim, "S06", WANG, {"ebike_plate": "济南A00018", "new_owner_name": "孙丽",
                                          "new_owner_id_number": SUN, "phone": PHONE}) == "ebike_not_owned"


def test_s08_rental_registration_feeds_residence_registration(api, sim) -> None:
    form = {"property_cert_number": "鲁(2021)济南市不动产权第0067890号", "tenant_name": "刘芳",
            "tenant_id_number": LIU, "lease_start": day(0), "lease_end": day(365), "monthly_rent": "2300",
            "phone": PHONE}
    r = run(api, sim, "S08", WANG, form)
    contract = r["data"]["contract_number"]
    assert contract.startswith("ZL") and len(contract) == 14
    h19 = run(api, sim, "H19", LIU, {"lease_contract_number": contract, "address": "山东省济南市历下区山大路120号",
                                     "move_in_date": day(0), "phone": PHONE})
    assert h19["data"]["registration_number"].startswith("JZDJ")
    assert refused(api, sim, "S08", SUN, form) == "property_not_owned"
    assert refused(api, sim, "S08", WANG, {**form, "tenant_name": "刘方"}) == "tenant_identity_mismatch"


def test_s09_foreign_guest_registration(api, sim) -> None:
    form = {"stay_from": day(0), "stay_to": day(10), "host_address": "山东省济南市历下区泉城路188号3单元502室",
            "host_name": "王小明", "host_phone": PHONE}
    r = run(api, sim, "S09", "533401987", form)
    assert r["reference"].startswith("JW") and "GBR" in shown(r)
    assert refused(api, sim, "S09", "533401987", {**form, "stay_to": day(60)}) == "stay_exceeds_visa"
    assert refused(api, sim, "S09", "E99999999", form) == "no_entry_record"


def test_s10_mediation_appointment(api, sim) -> None:
    slot = first_option(api, "S10", "slot", ZHANG)
    r = run(api, sim, "S10", ZHANG, {"dispute_type": "neighbour", "slot": slot["value"], "phone": PHONE})
    assert "调解室" in shown(r)
    # capacity 1: the slot is gone for the next resident
    assert slot["value"] not in [o["value"] for o in api.lookup("appointment_slots", "S10", WANG, {})["options"]]


def test_s11_lost_and_found_query(api, sim) -> None:
    r = run(api, sim, "S11", None, {"category": "phone"})
    assert sorted(r["data"]["items"]) == ["SW0003", "SW0006"]
    r = run(api, sim, "S11", None, {"category": "phone", "keyword": "华为"})
    assert r["data"]["items"] == ["SW0003"] and "大明湖派出所" in shown(r)


def test_s12_to_s16_reports_and_their_progress(api, sim) -> None:
    s12 = run(api, sim, "S12", WANG, {"document_type": "passport", "lost_date": day(-3), "lost_place": "历下区芙蓉街",
                                      "phone": PHONE})
    s13 = run(api, sim, "S13", WANG, {"address": "济南市历下区泉城路188号4单元", "noise_type": "renovation",
                                      "period": "night", "phone": PHONE})
    s14 = run(api, sim, "S14", WANG, {"address": "济南市历下区泉城广场", "issue": "no_leash", "phone": PHONE})
    s15 = run(api, sim, "S15", WANG, {"topic": "suggestion", "content": "建议在自助警局增加夜间照明和座椅。",
                                      "phone": PHONE})
    assert [x["reference"][:3] for x in (s13, s14, s15)] == ["S13", "S14", "S15"]
    assert s12["reference"].startswith("BS") and "泉城路派出所" in shown(s13)
    progress = run(api, sim, "S16", WANG, {})
    numbers = {c["case_number"] for c in progress["data"]["cases"]}
    assert {s13["reference"], s14["reference"], s15["reference"], "S1320241101000001"} <= numbers
    one = run(api, sim, "S16", WANG, {"tracking_number": "S1320241101000001"})
    assert one["data"]["cases"] == [{"case_number": "S1320241101000001", "status": "Closed", "closed": True}]
    assert any(d["label_en"] == "Answer" for d in one["display"])
    assert refused(api, sim, "S14", WANG, {"address": "济南市历下区泉城广场", "issue": "bite", "phone": PHONE}) \
        == "dog_bite_emergency"


def test_guides_count_their_readers(api, sim) -> None:
    for item_id in ("S17", "G02", "G03"):
        item = CATALOG.get(item_id)
        assert item.kind == "guide" and not item.needs_backend and len(item.guide_zh) > 200
        first = run(api, sim, item_id, None, {})["data"]["views_today"]
        assert run(api, sim, item_id, None, {})["data"]["views_today"] == first + 1


# --- T: traffic ----------------------------------------------------------------------------------
def test_t01_violations_with_where_to_handle_them(api, sim) -> None:
    r = run(api, sim, "T01", WANG, {})
    by_id = {v["violation_id"]: v for v in r["data"]["violations"]}
    assert by_id["WF0001"]["kiosk"] is True and by_id["WF0002"]["kiosk"] is False
    assert by_id["WF0003"]["status"] == "handled"
    assert "交警大队" in shown(r)


def test_t02_handles_fine_only_violations_and_sends_points_to_the_counter(api, sim) -> None:
    options = {o["value"]: o for o in api.lookup("unhandled_violations", "T02", WANG, {})["options"]}
    assert options["WF0001"]["detail"] == "kiosk" and options["WF0002"]["detail"] == "counter"
    assert refused(api, sim, "T02", WANG, {"violation": "WF0002"}) == "violation_needs_counter"
    assert refused(api, sim, "T02", ZHANG, {"violation": "WF0004"}) == "violation_needs_counter"
    r = run(api, sim, "T02", WANG, {"violation": "WF0001"})
    content = r["document"]["content"]
    assert r["document"]["doc_type"] == "traffic_penalty_decision"
    assert content["plate"] == "鲁A12345" and content["fine_cny"] == 100 and content["points"] == 0
    assert content["pay_by"] == day(15)
    assert refused(api, sim, "T02", WANG, {"violation": "WF0001"}) == "violation_already_handled"


def test_t03_fine_payment_includes_the_late_surcharge(api, sim) -> None:
    options = {o["value"]: o for o in api.lookup("unpaid_fines", "T03", WANG, {})["options"]}
    late = options["37010220240000311"]
    assert late["amount_fen"] == 10000 + 4500  # 15 days late: 45 %
    item = CATALOG.get("T03")
    amount = item.amount_fen({"decision": late["value"]}, {"decision": list(options.values())})
    r = run(api, sim, "T03", WANG, {"decision": late["value"]}, pay_fen=amount)
    assert r["data"]["paid_fen"] == 14500 and r["data"]["late_fen"] == 4500
    assert late["value"] not in [o["value"] for o in api.lookup("unpaid_fines", "T03", WANG, {})["options"]]
    assert refused(api, sim, "T03", WANG, {"decision": late["value"]}, pay_fen=14500) == "fine_already_paid"


def test_t04_t05_licence_points_and_status(api, sim) -> None:
    assert run(api, sim, "T04", ZHANG, {})["data"]["points"] == 1
    assert run(api, sim, "T05", ZHAO, {})["data"]["status"] == "暂扣"
    assert refused(api, sim, "T04", LI, {}) == "no_driving_licence"


def test_t06_to_t09_licence_applications(api, sim) -> None:
    form = {"delivery": "counter", "phone": PHONE}
    fee = fixed_fee("T06")
    assert fee == 1000
    assert run(api, sim, "T06", WANG, form, pay_fen=fee)["reference"].startswith("JZ")
    assert refused(api, sim, "T06", ZHANG, form, pay_fen=fee) == "licence_renewal_too_early"
    assert run(api, sim, "T07", ZHANG, {**form, "lost_date": day(-5)}, pay_fen=fee)["data"]["amount_fen"] == 1000
    assert refused(api, sim, "T07", ZHAO, {**form, "lost_date": day(-5)}, pay_fen=fee) == "licence_not_valid"
    assert run(api, sim, "T08", SUN, {**form, "damage": "water"}, pay_fen=fee)["reference"].startswith("JZ")
    r = run(api, sim, "T09", SUN, {"exam_number": "3701022026110002", "exam_date": day(-10)})
    assert r["data"]["exam_number"] == "3701022026110002" and "山东省立医院东院" in shown(r)
    assert refused(api, sim, "T09", SUN, {"exam_number": "3701022026110002", "exam_date": day(-10)}) \
        == "medical_already_submitted"
    assert refused(api, sim, "T09", SUN, {"exam_number": "3701020000000000", "exam_date": day(-10)}) \
        == "medical_record_not_found"


def test_t10_inspection_exempt_label(api, sim) -> None:
    assert {o["value"] for o in api.lookup("my_vehicles", "T10", WANG, {})["options"]} == {"鲁A12345", "鲁AD12345"}
    r = run(api, sim, "T10", WANG, {"plate": "鲁AD12345", "insurance_policy_number": "PDZA202637010000012345"})
    assert r["data"]["plate"] == "鲁AD12345" and r["data"]["label_number"].startswith("JYBZ")
    assert refused(api, sim, "T10", WANG, {"plate": "鲁A12345", "insurance_policy_number": "PDZA202637010000012345"}) \
        == "inspection_required"


def test_t11_t12_vehicle_licence_and_temporary_plate(api, sim) -> None:
    r = run(api, sim, "T11", WANG, {"plate": "鲁A12345", "reason": "lost", "delivery": "counter", "phone": PHONE},
            pay_fen=fixed_fee("T11"))
    assert r["data"]["plate"] == "鲁A12345"
    assert refused(api, sim, "T11", ZHAO, {"plate": "鲁A3C908", "reason": "lost", "delivery": "counter",
                                          "phone": PHONE}, pay_fen=1000) == "vehicle_not_normal"
    form = {"vin": "LFV2A21K6R3045678", "invoice_number": "24370000888888", "insurance_policy_number": "PDZA2026370000099"}
    assert fixed_fee("T12") == 500
    r = run(api, sim, "T12", SIQI, form, pay_fen=500)
    assert r["data"]["plate"].startswith("鲁A") and r["data"]["plate"].endswith("临")
    assert r["data"]["valid_to"] == day(14)
    assert refused(api, sim, "T12", ZHANG, {**form, "vin": "LGBH52E05RY123456", "invoice_number": "24370000777777"},
                   pay_fen=500) == "temp_plate_limit"


def test_t13_plate_pickup_appointment(api, sim) -> None:
    order = first_option(api, "T13", "plate_order", SUN)
    slot = first_option(api, "T13", "slot", SUN)
    r = run(api, sim, "T13", SUN, {"plate_order": order["value"], "slot": slot["value"]})
    assert r["data"]["plate"] == "鲁A5K8M2" and "车管所" in shown(r)
    assert refused(api, sim, "T13", SUN, {"plate_order": order["value"], "slot": slot["value"]}) == "no_plate_ready"


def test_t14_t15_vehicle_information_and_violation_record(api, sim) -> None:
    info = run(api, sim, "T14", WANG, {"plate": "鲁A12345"})
    assert info["data"]["status"] == "正常" and "朗逸" in shown(info) and "LSVAU2*******3456" in shown(info)
    record = run(api, sim, "T15", WANG, {"plate": "鲁A12345"})
    assert record["document"]["content"]["count"] == 3
    assert refused(api, sim, "T15", WANG, {"plate": "鲁A7B521"}) == "vehicle_not_found"


def test_t16_safe_driving_certificate(api, sim) -> None:
    r = run(api, sim, "T16", ZHANG, {"period_years": "3"})
    content = r["document"]["content"]
    assert content["accidents"] == 1 and content["violations"] == 2 and content["points"] == 1


def test_t17_quick_settlement_without_injuries_only(api, sim) -> None:
    form = {"accident_date": day(-1), "place": "历下区解放路与历山路路口", "own_plate": "鲁a12345",
            "other_plate": "鲁B6M338", "liability": "equal", "injuries": "no", "phone": PHONE}
    r = run(api, sim, "T17", WANG, form)
    assert r["data"]["agreement_number"].startswith("KC") and "鲁A12345 / 鲁B6M338" in shown(r)
    assert refused(api, sim, "T17", WANG, {**form, "injuries": "yes"}) == "accident_with_injury"


def test_t18_accident_determination(api, sim) -> None:
    accident = first_option(api, "T18", "accident", ZHANG)
    r = run(api, sim, "T18", ZHANG, {"accident": accident["value"]})
    assert r["document"]["content"]["accident_number"] == "SG37010220240101" and "次要责任" in shown(r)
    assert refused(api, sim, "T18", WANG, {"accident": "SG37010220240155"}) == "accident_not_determined"


# --- E: exit and entry ---------------------------------------------------------------------------
def test_e01_reendorsement_by_chip_number_with_remaining_count(api, sim) -> None:
    form = {"destination": "HK", "endorsement_type": "1B", "count": "2"}
    fee = fixed_fee("E01", form)
    assert fee == 3000  # 15 CNY per endorsement
    r = run(api, sim, "E01", "C12345678", form, pay_fen=fee)
    assert r["data"]["chip_remaining"] == 255 - 37 - 2 and "216" in shown(r)
    assert r["data"]["permit_number"] == "C12345678"
    assert refused(api, sim, "E01", "C87654321", {**form, "count": "1"}, pay_fen=1500) == "endorsements_exhausted"
    assert refused(api, sim, "E01", "C12345678", {**form, "endorsement_type": "11", "count": "1"}, pay_fen=1500) \
        == "endorsement_type_not_approved"
    assert refused(api, sim, "E01", "C12345678", form, pay_fen=1500) == "payment_amount_mismatch"


def test_e02_taiwan_endorsement(api, sim) -> None:
    r = run(api, sim, "E02", "L12345678", {"endorsement_type": "T"}, pay_fen=fixed_fee("E02"))
    assert r["reference"].startswith("QZ") and r["data"]["chip_remaining"] == 255 - 3 - 1
    assert refused(api, sim, "E02", "L12345678", {"endorsement_type": "G"}, pay_fen=1500) == "individual_tour_not_open"


def test_e03_e07_photo_then_pre_acceptance(api, sim) -> None:
    photo = run(api, sim, "E07", ZHANG, {"document_type": "passport"})
    receipt = photo["data"]["receipt_number"]
    assert receipt.startswith("XP")
    r = run(api, sim, "E03", ZHANG, {"document_type": "passport", "application_type": "first",
                                     "photo_receipt": receipt, "phone": PHONE})
    assert r["reference"].startswith("YS") and r["data"]["fee_fen"] == 12000
    assert refused(api, sim, "E03", WANG, {"document_type": "passport", "application_type": "first",
                                          "phone": PHONE}) == "document_exists"
    assert refused(api, sim, "E03", ZHAO, {"document_type": "passport", "application_type": "first",
                                          "phone": PHONE}) == "exit_restricted"


def test_e04_to_e06_queries(api, sim) -> None:
    progress = run(api, sim, "E04", SUN, {})
    assert {"application_number": "CR20240001", "status": "ready"} in progress["data"]["applications"]
    records = run(api, sim, "E05", WANG, {"date_from": day(-200), "date_to": day(0)})
    assert records["data"]["crossings"] == 4 and "深圳湾口岸" in shown(records)
    assert refused(api, sim, "E05", WANG, {"date_from": day(0), "date_to": day(-10)}) == "date_range_invalid"
    remaining = {p["permit_number"]: p for p in run(api, sim, "E06", SUN, {})["data"]["permits"]}
    assert remaining["C87654321"]["chip_remaining"] == 0


def test_e08_e09_fee_then_pickup(api, sim) -> None:
    fee = first_option(api, "E08", "application", LI)
    assert (fee["value"], fee["amount_fen"]) == ("CR20240002", 6000)
    r = run(api, sim, "E08", LI, {"application": fee["value"]}, pay_fen=6000)
    assert r["data"] == {"application_number": "CR20240002", "amount_fen": 6000}
    ready = first_option(api, "E09", "application", SUN)
    slot = first_option(api, "E09", "slot", SUN)
    r = run(api, sim, "E09", SUN, {"application": ready["value"], "slot": slot["value"]})
    assert r["data"]["application_number"] == "CR20240001" and "出入境" in shown(r)
    assert refused(api, sim, "E09", SIQI, {"application": "CR20240003", "slot": slot["value"]}) == "document_not_ready"


# --- G: general ----------------------------------------------------------------------------------
def test_g01_counter_appointment_one_per_service_and_full_slots(api, sim) -> None:
    slot = first_option(api, "G01", "slot", ZHANG)
    r = run(api, sim, "G01", ZHANG, {"service": "household", "slot": slot["value"], "phone": PHONE})
    assert r["data"]["slot_id"] == slot["value"] and r["reference"].startswith("YY")
    assert refused(api, sim, "G01", ZHANG, {"service": "household", "slot": slot["value"], "phone": PHONE}) \
        == "appointment_exists"
    first_day = min(o["value"][4:12] for o in api.lookup("appointment_slots", "G01", WANG, {})["options"])
    full = f"G01-{first_day}-1630"
    assert full not in [o["value"] for o in api.lookup("appointment_slots", "G01", WANG, {})["options"]]
    assert refused(api, sim, "G01", WANG, {"service": "traffic", "slot": full, "phone": PHONE}) == "slot_full"


def test_g04_contact_the_community_officer_of_the_address(api, sim) -> None:
    r = run(api, sim, "G04", LI, {"topic": "safety", "message": "楼道里堆放杂物，存在消防隐患。", "callback": "phone",
                                  "phone": PHONE})
    assert r["data"]["police_number"] == "370103-2045" and "孟庆华" in shown(r)


def test_g05_ratings_are_stored_for_the_statistics(api, sim) -> None:
    before = run(api, sim, "G05", None, {"rating": "satisfied"})["data"]
    after = run(api, sim, "G05", None, {"rating": "dissatisfied", "rated_item": "T02", "reason": "打印较慢"})["data"]
    assert after["total"] == before["total"] + 1
    assert after["counts"]["dissatisfied"] == before["counts"]["dissatisfied"] + 1
    assert 0 < after["satisfaction_rate"] < before["satisfaction_rate"]
