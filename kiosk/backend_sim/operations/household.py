"""Household and ID items (H01-H22): certificates from the household register, ID card
applications, residence registration and permits.

Reads the core people tables (residents, households, household_members, relationships,
former_names) and keeps its own: ``id_card_fees``, ``lost_id_cards``, ``birth_registrations``,
``residence_registrations``, ``residence_permits`` and ``residence_permit_points``.
Dates are seeded relative to the seeding day, so the rules hold on any day the tests run.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from typing import Any

from kiosk.privacy import mask_id_number
from kiosk.backend_sim.db import now
from kiosk.backend_sim.operations._common import (
    SEX_ZH, WHERE_STATION_EN, WHERE_STATION_ZH, add_months, age_on, birth_from_id, book_slot, appointment_lines,
    both, case_lines, fen, field, line, need_resident, open_case, pending_case, require_payment,
    resident_by_fields, today)
from kiosk.backend_sim.registry import OpContext, lookup, operation
from kiosk.backend_sim.seed import LIU_FANG, SUN_LI, WANG_XIAOMING

SCHEMA = """
CREATE TABLE IF NOT EXISTS id_card_fees (
    application_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    reason_zh TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    paid_at TEXT,
    order_id TEXT
);
CREATE TABLE IF NOT EXISTS lost_id_cards (
    id_number TEXT PRIMARY KEY,
    report_number TEXT NOT NULL,
    lost_date TEXT NOT NULL,
    reported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS birth_registrations (
    birth_certificate_number TEXT PRIMARY KEY,
    status TEXT NOT NULL,             -- registered, appointment
    reference TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS residence_registrations (
    registration_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    address TEXT NOT NULL,
    lease_contract_number TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    resident_since TEXT NOT NULL,     -- start of continuous residence in the city
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS residence_permits (
    permit_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    issued_on TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    endorsements INTEGER NOT NULL DEFAULT 0,
    issuer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS residence_permit_points (
    id_number TEXT NOT NULL,
    category_zh TEXT NOT NULL,
    category_en TEXT NOT NULL,
    points INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
"""

# 王小明 and 孙丽's son, 13: a minor the ethnicity rule (H08) can apply to.
WANG_ZIXUAN = "370102201306010117"
SEEDED_BIRTH_CERTIFICATE = "Q370000001"  # already registered: H10 refuses it
PERMIT_LIU_FANG = "JZZ370102240086"
BOOKLET_REASONS = {"lost": ("遗失", "lost"), "damaged": ("损坏", "damaged")}
ID_CARD_ITEMS = ("H12", "H13", "H14")


def seed(conn: sqlite3.Connection) -> None:
    """The son, an unpaid ID card fee, a transfer, 刘芳's residence registration, permit and points."""
    t = now().date()
    conn.execute(
        "INSERT INTO residents (id_number, name, sex, ethnicity, ethnicity_code, birth_date, address, issuer,"
        " valid_from, valid_to, household_id, hukou_city, living_city, living_address, phone)"
        " SELECT ?, '王子轩', 'male', '汉', '01', '2013-06-01', address, '济南市公安局历下分局', '2023-06-01',"
        " '2028-06-01', household_id, '济南市', '济南市', address, '' FROM households WHERE head_id_number = ?",
        (WANG_ZIXUAN, WANG_XIAOMING))
    conn.execute("INSERT INTO household_members (household_id, id_number, relation_to_head_zh, relation_to_head_en,"
                 " moved_in_on) SELECT household_id, ?, '子', 'son', '2013-06-20' FROM households"
                 " WHERE head_id_number = ?", (WANG_ZIXUAN, WANG_XIAOMING))
    for parent in (WANG_XIAOMING, SUN_LI):
        conn.execute("INSERT INTO relationships VALUES (?, ?, 'child')", (parent, WANG_ZIXUAN))
        conn.execute("INSERT INTO relationships VALUES (?, ?, 'parent')", (WANG_ZIXUAN, parent))
    # 孙丽 applied at a counter for a damaged card and has not paid the fee yet (H17, H18, H16).
    created = (t - timedelta(days=2)).isoformat()
    conn.execute("INSERT INTO cases (case_number, item_id, category, id_number, title_zh, title_en, status_zh,"
                 " status_en, handler_zh, created_at, due_on) VALUES ('SF20240001', 'H13', 'id_card', ?,"
                 " '居民身份证损坏换领（窗口受理）', 'ID card replacement (counter)', '待缴工本费', 'Awaiting the fee',"
                 " '泉城路派出所', ?, ?)", (SUN_LI, created, (t + timedelta(days=15)).isoformat()))
    conn.execute("INSERT INTO id_card_fees VALUES ('SF20240001', ?, '居民身份证损坏换领', 2000, NULL, NULL)", (SUN_LI,))
    # 刘芳 is moving her household from Zhengzhou to Jinan (H09).
    conn.execute("INSERT INTO cases (case_number, item_id, category, id_number, title_zh, title_en, status_zh,"
                 " status_en, handler_zh, created_at, due_on, details) VALUES ('QY20250310001', 'H09', 'transfer',"
                 " ?, '户口迁入（购房落户）准迁证', 'Household transfer permit (home owner)', '迁出地审核中',"
                 " 'Under review at the place of origin', '郑州市公安局金水分局花园路派出所', ?, ?, ?)",
                 (LIU_FANG, (t - timedelta(days=6)).isoformat(), (t + timedelta(days=14)).isoformat(),
                  json.dumps({"from": "河南省郑州市金水区", "to": "山东省济南市历下区"}, ensure_ascii=False)))
    conn.execute("INSERT INTO birth_registrations VALUES (?, 'registered', 'CS20230001')", (SEEDED_BIRTH_CERTIFICATE,))
    since = add_months(t, -14)
    conn.execute("INSERT INTO residence_registrations VALUES ('JZDJ20240001', ?, ?, 'ZL202401050001', ?, ?, 1)",
                 (LIU_FANG, "山东省济南市历下区文化东路50号2单元301室", since.isoformat(), since.isoformat()))
    # Her permit lapsed 40 days ago without its yearly endorsement (H21 endorses it again).
    conn.execute("INSERT INTO residence_permits VALUES (?, ?, ?, ?, 0, '济南市公安局历下分局')",
                 (PERMIT_LIU_FANG, LIU_FANG, add_months(since, 7).isoformat(),
                  (t - timedelta(days=40)).isoformat()))
    conn.executemany("INSERT INTO residence_permit_points VALUES (?, ?, ?, ?, ?)", [
        (LIU_FANG, "居住年限", "Years of residence", 12, "连续居住1年，每年12分"),
        (LIU_FANG, "社会保险", "Social insurance", 24, "连续缴纳24个月，每月1分"),
        (LIU_FANG, "学历", "Education", 60, "大学本科"),
        (LIU_FANG, "职业技能", "Professional skills", 20, "中级职称"),
    ])


# --- helpers -----------------------------------------------------------------------------------
def _household(ctx: OpContext, person: dict[str, Any]) -> dict[str, Any]:
    household = ctx.row("SELECT * FROM households WHERE household_id = ?", person["household_id"])
    if household is None:
        ctx.refuse("household_not_found", "未查询到您的户籍登记。", "Your household registration was not found.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    return household


def _identity_content(person: dict[str, Any]) -> dict[str, Any]:
    return {"name": person["name"], "sex": SEX_ZH.get(person["sex"], person["sex"]),
            "ethnicity": person["ethnicity"], "birth_date": person["birth_date"],
            "id_number": person["id_number"], "address": person["address"]}


def _purpose_zh(ctx: OpContext) -> str:
    labels = {"employment": "就业", "school": "入学", "travel_abroad": "出国（境）", "social_security": "社保医保",
              "property": "房产登记", "other": "其他"}
    return labels.get(field(ctx, "purpose"), field(ctx, "purpose") or "其他")


def _certificate_result(doc: dict[str, Any], lines: list[dict[str, str]]) -> dict[str, Any]:
    return {"document": doc, "display": lines + [line("验证码", "Verification code", doc["verification_code"])],
            "data": {"document_id": doc["document_id"], "verification_code": doc["verification_code"]}}


def _kinship_words(person: dict[str, Any], relative: dict[str, Any], relation: str) -> tuple[str, str]:
    """How the relative stands to the person, in words: 父女, 母子, 夫妻 ..."""
    if relation == "spouse":
        return "夫妻", "spouses"
    parent, child = (person, relative) if relation == "child" else (relative, person)
    p = "父" if parent["sex"] == "male" else "母"
    c = "子" if child["sex"] == "male" else "女"
    en_p = "father" if p == "父" else "mother"
    en_c = "son" if c == "子" else "daughter"
    return p + c, f"{en_p} and {en_c}"


# --- H01-H04: certificates ---------------------------------------------------------------------
@operation("household_certificate")
def household_certificate(ctx: OpContext) -> dict[str, Any]:
    """H01: the household registration certificate from the resident's household record."""
    person = need_resident(ctx)
    household = _household(ctx, person)
    head = ctx.row("SELECT name FROM residents WHERE id_number = ?", household["head_id_number"]) or {"name": ""}
    content = {**_identity_content(person), "household_id": household["household_id"],
               "household_type": household["household_type"], "household_address": household["address"],
               "head_name": head["name"], "relation_to_head": person.get("relation_to_head_zh") or "",
               "police_station": household["police_station"], "purpose": _purpose_zh(ctx),
               "statement": f"兹证明{person['name']}（公民身份号码：{person['id_number']}）"
                            f"户籍登记在{household['address']}，户号{household['household_id']}。",
               "valid_until": add_months(today(ctx), 3).isoformat()}
    doc = ctx.issue_document("household_certificate", "户籍证明", "Household registration certificate", content)
    return _certificate_result(doc, [line("户号", "Household number", household["household_id"]),
                                     line("与户主关系", "Relation to head", person.get("relation_to_head_zh") or ""),
                                     line("出具单位", "Issued by", household["police_station"])])


@operation("kinship_certificate")
def kinship_certificate(ctx: OpContext) -> dict[str, Any]:
    """H02: a kinship certificate, only for a relationship recorded in the household register."""
    person = need_resident(ctx)
    relative_id = field(ctx, "relative_id_number").upper()
    relative = ctx.row("SELECT * FROM residents WHERE id_number = ?", relative_id)
    if relative is None or relative["name"] != field(ctx, "relative_name"):
        ctx.refuse("relative_identity_mismatch", "亲属的姓名与身份证号码不一致或未登记。",
                   "The relative's name and ID number do not match a registered person.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    rel = ctx.row("SELECT relation FROM relationships WHERE id_number = ? AND relative_id_number = ?",
                  person["id_number"], relative_id)
    if rel is None:
        ctx.refuse("kinship_not_on_record", "户籍资料中没有记载您与该亲属的关系，不能自助开具。",
                   "The household register does not record this relationship, so it cannot be certified here.",
                   "请携带出生医学证明、结婚证等材料到" + WHERE_STATION_ZH + "核实",
                   "bring birth or marriage certificates to " + WHERE_STATION_EN)
    words_zh, words_en = _kinship_words(person, relative, rel["relation"])
    household = _household(ctx, person)
    content = {"applicant": _identity_content(person), "relative": _identity_content(relative),
               "relationship": words_zh, "relationship_en": words_en, "purpose": _purpose_zh(ctx),
               "police_station": household["police_station"],
               "statement": f"经核查户籍资料，{person['name']}与{relative['name']}系{words_zh}关系。"}
    doc = ctx.issue_document("kinship_certificate", "亲属关系证明", "Kinship relationship certificate", content)
    return _certificate_result(doc, [line("亲属", "Relative", relative["name"]),
                                     line("关系", "Relationship", both(words_zh, words_en)),
                                     line("出具单位", "Issued by", household["police_station"])])


@operation("death_deregistration_certificate")
def death_deregistration_certificate(ctx: OpContext) -> dict[str, Any]:
    """H03: only for a death deregistration registered in the household record, for a close relative."""
    person = need_resident(ctx)
    deceased_id = field(ctx, "deceased_id_number").upper()
    member = ctx.row("SELECT m.*, r.name, r.sex, r.ethnicity, r.birth_date, r.address, h.police_station,"
                     " h.address AS household_address FROM household_members m JOIN residents r USING (id_number)"
                     " JOIN households h ON h.household_id = m.household_id"
                     " WHERE m.id_number = ? AND m.status = 'deregistered' AND m.deregistration_reason = 'death'",
                     deceased_id)
    if member is None or member["name"] != field(ctx, "deceased_name"):
        ctx.refuse("deregistration_not_registered", "未查询到该人员的死亡注销登记。",
                   "No death deregistration is registered for this person.",
                   "请持死亡医学证明、逝者户口簿和身份证到" + WHERE_STATION_ZH + "办理死亡注销",
                   "register the death with the medical death certificate at " + WHERE_STATION_EN)
    related = ctx.row("SELECT relation FROM relationships WHERE id_number = ? AND relative_id_number = ?",
                      person["id_number"], deceased_id)
    if related is None and person["household_id"] != member["household_id"]:
        ctx.refuse("not_close_relative", "户籍资料中您与逝者无近亲属关系，不能自助打印。",
                   "The register shows no close relationship to the deceased, so it cannot be printed here.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    content = {"deceased": {"name": member["name"], "sex": SEX_ZH.get(member["sex"], member["sex"]),
                            "ethnicity": member["ethnicity"], "birth_date": member["birth_date"],
                            "id_number": deceased_id, "address": member["household_address"]},
               "death_date": member["death_date"], "deregistered_on": member["deregistered_on"],
               "deregistration_reason": "死亡", "death_certificate_no": member["death_certificate_no"],
               "household_id": member["household_id"], "applicant_name": person["name"],
               "police_station": member["police_station"],
               "statement": f"{member['name']}（公民身份号码：{deceased_id}）因死亡于{member['deregistered_on']}"
                            f"注销户口。"}
    doc = ctx.issue_document("deregistration_certificate", "户口注销证明", "Household deregistration certificate",
                             content)
    return _certificate_result(doc, [line("注销人员", "Deregistered person", member["name"]),
                                     line("注销日期", "Deregistered on", member["deregistered_on"]),
                                     line("注销原因", "Reason", both("死亡", "death"))])


@operation("former_name_certificate")
def former_name_certificate(ctx: OpContext) -> dict[str, Any]:
    """H04: a former name certificate when the household record lists one."""
    person = need_resident(ctx)
    names = ctx.rows("SELECT * FROM former_names WHERE id_number = ? ORDER BY changed_on", person["id_number"])
    if not names:
        ctx.refuse("no_former_name_on_record", "户籍资料中没有您的曾用名记载。",
                   "The household register lists no former name for you.",
                   "如需补录曾用名，请携带档案等材料到" + WHERE_STATION_ZH,
                   "to add one, bring your records to " + WHERE_STATION_EN)
    household = _household(ctx, person)
    former = "、".join(n["former_name"] for n in names)
    content = {**_identity_content(person), "former_names": [dict(n) for n in names], "purpose": _purpose_zh(ctx),
               "police_station": household["police_station"],
               "statement": f"{person['name']}（公民身份号码：{person['id_number']}）曾用名{former}，"
                            f"与现用名{person['name']}系同一人。"}
    doc = ctx.issue_document("former_name_certificate", "曾用名证明", "Former name certificate", content)
    return _certificate_result(doc, [line("曾用名", "Former name", former),
                                     line("变更日期", "Changed on", names[-1]["changed_on"])])


# --- H05-H08: applications ---------------------------------------------------------------------
@operation("same_person_application")
def same_person_application(ctx: OpContext) -> dict[str, Any]:
    """H05: a same-person certificate request, checked by the station."""
    person = need_resident(ctx)
    if field(ctx, "other_name") == person["name"]:
        ctx.refuse("names_identical", "两个姓名相同，无需开具同一人证明。",
                   "The names are identical, so no same-person certificate is needed.")
    case = open_case(ctx, prefix="TY", category="household", title_zh="同一人证明", title_en="Same-person certificate",
                     handler_zh="户籍地派出所", due_days=5,
                     details={"other_document": field(ctx, "other_document")})
    return {"reference": case["case_number"], "display": case_lines(case),
            "data": {"case_number": case["case_number"]}}


@operation("name_change_application")
def name_change_application(ctx: OpContext) -> dict[str, Any]:
    """H06: a name change request; the station reviews it."""
    person = need_resident(ctx)
    new_name = field(ctx, "new_name")
    if new_name == person["name"]:
        ctx.refuse("name_unchanged", "拟变更姓名与现用名相同。", "The new name is the same as the current one.")
    if pending_case(ctx, ("H06",)):
        ctx.refuse("case_pending", "您已有正在审核的姓名变更申请。", "A name change request of yours is already under review.")
    case = open_case(ctx, prefix="XM", category="household", title_zh="姓名变更", title_en="Name change",
                     status_zh="待派出所审核", status_en="Awaiting review", handler_zh="户籍地派出所", due_days=20,
                     details={"reason": field(ctx, "reason")})
    return {"reference": case["case_number"], "display": case_lines(case) + [line("拟变更姓名", "New name", new_name)],
            "data": {"case_number": case["case_number"]}}


@operation("birth_date_correction")
def birth_date_correction(ctx: OpContext) -> dict[str, Any]:
    """H07: a birth date correction request, with the evidence named."""
    person = need_resident(ctx)
    correct = field(ctx, "correct_birth_date")
    if correct == person["birth_date"]:
        ctx.refuse("birth_date_unchanged", "填写的出生日期与登记的出生日期相同。",
                   "The date given is the one already registered.")
    case = open_case(ctx, prefix="CS", category="household", title_zh="出生日期更正", title_en="Birth date correction",
                     status_zh="待调查核实", status_en="Under investigation", handler_zh="户籍地派出所", due_days=20,
                     details={"from": person["birth_date"], "to": correct, "evidence": field(ctx, "evidence")})
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("登记日期", "Registered date", person["birth_date"]),
                                           line("申请更正为", "Correct to", correct)],
            "data": {"case_number": case["case_number"]}}


@operation("ethnicity_change_application")
def ethnicity_change_application(ctx: OpContext) -> dict[str, Any]:
    """H08: ethnicity change for a minor (by a parent) or once at 18-19 (by oneself); never from 20."""
    person = need_resident(ctx)
    subject = resident_by_fields(ctx, "subject_id_number", "subject_name")
    age = age_on(birth_from_id(subject["id_number"]), today(ctx))
    if age >= 20:
        ctx.refuse("ethnicity_change_age", "年满二十周岁的公民不能变更民族成分。",
                   "The ethnicity of a person aged 20 or more can no longer be changed.")
    if subject["id_number"] != person["id_number"]:
        rel = ctx.row("SELECT relation FROM relationships WHERE id_number = ? AND relative_id_number = ?"
                      " AND relation = 'child'", person["id_number"], subject["id_number"])
        if rel is None or age >= 18:
            ctx.refuse("not_guardian", "只有父母可以为未满十八周岁的子女申请；年满十八周岁的须本人申请。",
                       "Only a parent can apply for a child under 18; from 18 the person applies.")
    new_code = field(ctx, "new_ethnicity")
    if new_code == subject["ethnicity_code"]:
        ctx.refuse("ethnicity_unchanged", "所选民族与现登记民族相同。", "That is the ethnicity already registered.")
    case = open_case(ctx, prefix="MZ", category="household", title_zh="民族成分变更", title_en="Ethnicity change",
                     status_zh="待审批", status_en="Awaiting approval", handler_zh="区县公安分局", due_days=20,
                     details={"subject": mask_id_number(subject["id_number"]), "to": new_code})
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("变更人", "Person", subject["name"])],
            "data": {"case_number": case["case_number"]}}


# --- H09, H10, H11 -----------------------------------------------------------------------------
@operation("household_transfer_progress")
def household_transfer_progress(ctx: OpContext) -> dict[str, Any]:
    """H09: the resident's household transfers and where each stands."""
    person = need_resident(ctx)
    wanted = field(ctx, "case_number").upper()
    cases = ctx.rows("SELECT * FROM cases WHERE id_number = ? AND category = 'transfer' ORDER BY created_at DESC",
                     person["id_number"])
    if wanted:
        cases = [c for c in cases if c["case_number"] == wanted]
    display = [line("迁移业务", "Transfers", len(cases))]
    for c in cases:
        display += [line("受理编号", "Case number", c["case_number"]), line("业务", "Case", c["title_zh"]),
                    line("当前状态", "Status", both(c["status_zh"], c["status_en"])),
                    line("办理单位", "Handled by", c["handler_zh"])]
    return {"display": display, "data": {"cases": [{"case_number": c["case_number"], "status": c["status_en"]}
                                                   for c in cases]}}


@operation("birth_registration_appointment")
def birth_registration_appointment(ctx: OpContext) -> dict[str, Any]:
    """H10: book the household counter to register a newborn."""
    need_resident(ctx)
    number = field(ctx, "birth_certificate_number").upper()
    done = ctx.row("SELECT status FROM birth_registrations WHERE birth_certificate_number = ?", number)
    if done is not None:
        ctx.refuse("birth_already_registered", "该出生医学证明已办理出生登记或已有预约。",
                   "This birth certificate is already registered or booked.")
    appt = book_slot(ctx, "H10", field(ctx, "slot"), details={"birth_certificate_number": number},
                     one_per=f"H10:{number}")
    ctx.db.execute("INSERT INTO birth_registrations VALUES (?, 'appointment', ?)", (number, appt["appointment_number"]))
    return {"reference": appt["appointment_number"],
            "display": appointment_lines(appt) + [line("新生儿", "Newborn", field(ctx, "child_name"))],
            "data": {"appointment_number": appt["appointment_number"], "starts_at": appt["starts_at"]}}


@operation("household_booklet_replacement")
def household_booklet_replacement(ctx: OpContext) -> dict[str, Any]:
    """H11: only the head of household replaces the booklet."""
    person = need_resident(ctx)
    if person.get("relation_to_head_zh") != "户主":
        ctx.refuse("not_household_head", "户口簿须由户主申请补领。",
                   "Only the head of household can replace the booklet.",
                   "请户主本人办理，或持户主委托书到" + WHERE_STATION_ZH,
                   "the head applies, or bring the head's authorisation to " + WHERE_STATION_EN)
    household = _household(ctx, person)
    zh, en = BOOKLET_REASONS.get(field(ctx, "reason"), ("遗失", "lost"))
    case = open_case(ctx, prefix="HK", category="household", title_zh=f"户口簿补领（{zh}）",
                     title_en=f"Household booklet replacement ({en})", status_zh="制作中", status_en="In production",
                     handler_zh=household["police_station"], due_days=3,
                     details={"household_id": household["household_id"], "delivery": field(ctx, "delivery")})
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("户号", "Household number", household["household_id"]),
                                           line("领取地点", "Collect at", household["police_station"])],
            "data": {"case_number": case["case_number"]}}


# --- H12-H18: ID card --------------------------------------------------------------------------
def _id_card_case(ctx: OpContext, person: dict[str, Any], title_zh: str, title_en: str, prefix: str
                  ) -> dict[str, Any]:
    if pending_case(ctx, ID_CARD_ITEMS, person["id_number"]):
        ctx.refuse("id_card_application_pending", "您已有正在办理的身份证业务。",
                   "An ID card application of yours is already in progress.",
                   "可使用“身份证办理进度查询”", "see \"ID card progress query\"")
    order_id = require_payment(ctx, 2000)
    station = (ctx.row("SELECT police_station FROM households WHERE household_id = ?", person["household_id"])
               or {"police_station": "户籍地派出所"})["police_station"]
    case = open_case(ctx, prefix=prefix, category="id_card", title_zh=title_zh, title_en=title_en,
                     status_zh="已受理，制证中", status_en="Accepted, card in production", handler_zh=station,
                     due_days=15, id_number=person["id_number"],
                     details={"delivery": field(ctx, "delivery"), "order_id": order_id})
    ctx.db.execute("INSERT INTO id_card_fees VALUES (?, ?, ?, 2000, ?, ?)",
                   (case["case_number"], person["id_number"], title_zh, ctx.now.isoformat(), order_id))
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("工本费", "Fee", fen(2000)),
                                           line("领取地点", "Collect at", station if field(ctx, "delivery") != "post"
                                                else both("邮寄", "by post"))],
            "data": {"case_number": case["case_number"], "amount_fen": 2000}}


@operation("id_card_renewal")
def id_card_renewal(ctx: OpContext) -> dict[str, Any]:
    """H12: renewal from three months before expiry (or after it); long-term cards never expire."""
    person = need_resident(ctx)
    if person["valid_to"] == "long-term":
        ctx.refuse("id_card_long_term", "您的身份证为长期有效，无需到期换领。",
                   "Your ID card is valid for life and needs no renewal.")
    valid_to = date.fromisoformat(person["valid_to"])
    if today(ctx) < add_months(valid_to, -3):
        ctx.refuse("id_renewal_too_early", f"身份证有效期至{valid_to}，有效期满前三个月内方可换领。",
                   f"Your card is valid until {valid_to}; renew within three months of that date.")
    return _id_card_case(ctx, person, "居民身份证到期换领", "ID card renewal", "SF")


@operation("id_card_damaged_replacement")
def id_card_damaged_replacement(ctx: OpContext) -> dict[str, Any]:
    """H13: a damaged card is replaced for the fee."""
    person = need_resident(ctx)
    return _id_card_case(ctx, person, "居民身份证损坏换领", "ID card replacement (damaged)", "SF")


@operation("id_card_lost_replacement")
def id_card_lost_replacement(ctx: OpContext) -> dict[str, Any]:
    """H14: a lost card is cancelled (reported lost if not yet) and a new one made."""
    person = resident_by_fields(ctx)
    if not ctx.row("SELECT 1 FROM lost_id_cards WHERE id_number = ?", person["id_number"]):
        ctx.db.execute("INSERT INTO lost_id_cards VALUES (?, ?, ?, ?)",
                       (person["id_number"], ctx.new_reference("GS"), field(ctx, "lost_date"), ctx.now.isoformat()))
    return _id_card_case(ctx, person, "居民身份证丢失补领", "ID card replacement (lost)", "SF")


@operation("id_card_report_lost")
def id_card_report_lost(ctx: OpContext) -> dict[str, Any]:
    """H15: mark the card lost so verification systems flag it."""
    person = resident_by_fields(ctx)
    if ctx.row("SELECT 1 FROM lost_id_cards WHERE id_number = ?", person["id_number"]):
        ctx.refuse("already_reported_lost", "该身份证已挂失。", "This ID card is already reported lost.",
                   "请办理“身份证丢失补领”", "apply for \"ID card replacement (lost)\"")
    number = ctx.new_reference("GS")
    ctx.db.execute("INSERT INTO lost_id_cards VALUES (?, ?, ?, ?)",
                   (person["id_number"], number, field(ctx, "lost_date"), ctx.now.isoformat()))
    return {"reference": number,
            "display": [line("挂失编号", "Report number", number),
                        line("证件号码", "ID number", mask_id_number(person["id_number"])),
                        line("挂失状态", "Status", both("已挂失", "reported lost"))],
            "data": {"report_number": number}}


@operation("temporary_identity_certificate")
def temporary_identity_certificate(ctx: OpContext) -> dict[str, Any]:
    """H16: a 30-day temporary identity certificate while an ID card application is in progress."""
    person = need_resident(ctx)
    case = pending_case(ctx, ID_CARD_ITEMS, person["id_number"])
    if case is None:
        ctx.refuse("no_id_card_application", "您没有正在办理的身份证业务，请使用居民身份证。",
                   "You have no ID card application in progress; please use your ID card.",
                   "如身份证丢失，请先办理“身份证丢失补领”", "if it is lost, apply for a replacement first")
    household = _household(ctx, person)
    valid_until = (today(ctx) + timedelta(days=30)).isoformat()
    labels = {"rail": "乘坐火车", "air": "乘坐飞机", "hotel": "旅馆住宿", "other": "其他"}
    content = {**_identity_content(person), "application_number": case["case_number"],
               "purpose": labels.get(field(ctx, "purpose"), "其他"), "valid_until": valid_until,
               "police_station": household["police_station"],
               "statement": f"{person['name']}的居民身份证正在办理中（受理编号{case['case_number']}），"
                            f"特此证明其身份，有效期至{valid_until}。"}
    doc = ctx.issue_document("temporary_identity_certificate", "临时身份证明", "Temporary identity certificate",
                             content)
    return _certificate_result(doc, [line("有效期至", "Valid until", valid_until),
                                     line("身份证受理编号", "ID card application", case["case_number"])])


@operation("id_card_progress")
def id_card_progress(ctx: OpContext) -> dict[str, Any]:
    """H17: the resident's ID card applications and their state."""
    person = need_resident(ctx)
    cases = ctx.rows("SELECT * FROM cases WHERE id_number = ? AND category = 'id_card' ORDER BY created_at DESC",
                     person["id_number"])
    display = [line("身份证业务", "ID card applications", len(cases))]
    for c in cases:
        display += [line("受理编号", "Case number", c["case_number"]), line("业务", "Application", c["title_zh"]),
                    line("状态", "Status", both(c["status_zh"], c["status_en"])),
                    line("预计完成", "Expected by", c["due_on"])]
    return {"display": display,
            "data": {"cases": [{"case_number": c["case_number"], "status": c["status_en"]} for c in cases]}}


@lookup("id_card_fees")
def id_card_fees(ctx: OpContext) -> list[dict[str, Any]]:
    """H18: the resident's unpaid ID card fees."""
    rows = ctx.rows("SELECT * FROM id_card_fees WHERE id_number = ? AND paid_at IS NULL", ctx.id_number or "")
    return [{"value": r["application_number"], "label_zh": f"{r['reason_zh']} {fen(r['amount_fen'])}",
             "label_en": f"ID card fee {r['amount_fen'] / 100:.2f} CNY", "amount_fen": r["amount_fen"]}
            for r in rows]


@operation("id_card_fee_payment")
def id_card_fee_payment(ctx: OpContext) -> dict[str, Any]:
    """H18: pay the fee of an ID card application accepted at a counter."""
    person = need_resident(ctx)
    fee = ctx.row("SELECT * FROM id_card_fees WHERE application_number = ? AND id_number = ?",
                  field(ctx, "application"), person["id_number"])
    if fee is None:
        ctx.refuse("fee_not_found", "未查询到该笔待缴费用。", "No such fee is due.")
    if fee["paid_at"]:
        ctx.refuse("fee_already_paid", "该笔费用已缴纳。", "This fee is already paid.")
    order_id = require_payment(ctx, fee["amount_fen"])
    ctx.db.execute("UPDATE id_card_fees SET paid_at = ?, order_id = ? WHERE application_number = ?",
                   (ctx.now.isoformat(), order_id, fee["application_number"]))
    ctx.db.execute("UPDATE cases SET status_zh = '已缴费，制证中', status_en = 'Paid, card in production'"
                   " WHERE case_number = ?", (fee["application_number"],))
    return {"display": [line("受理编号", "Application", fee["application_number"]),
                        line("缴费金额", "Amount paid", fen(fee["amount_fen"])),
                        line("支付订单", "Payment order", order_id)],
            "data": {"application_number": fee["application_number"], "amount_fen": fee["amount_fen"]}}


# --- H19-H22: residence ------------------------------------------------------------------------
def _lease(ctx: OpContext, person: dict[str, Any]) -> dict[str, Any]:
    number = field(ctx, "lease_contract_number").upper()
    lease = ctx.row("SELECT * FROM leases WHERE contract_number = ? AND tenant_id_number = ?", number,
                    person["id_number"])
    if lease is None:
        ctx.refuse("lease_not_found", "未查询到以您为承租人的该租赁合同登记。",
                   "No registered lease with this number names you as the tenant.",
                   "请房东先办理“出租房屋登记”", "ask the landlord to register the rental first")
    if lease["lease_end"] < today(ctx).isoformat():
        ctx.refuse("lease_expired", "该租赁合同已到期。", "This lease has ended.",
                   "请房东续签后重新登记", "ask the landlord to register the renewed lease")
    return lease


def _non_local(ctx: OpContext, person: dict[str, Any]) -> None:
    if person["hukou_city"] == "济南市":
        ctx.refuse("local_household", "您的户籍在本市，无需办理居住登记和居住证。",
                   "Your household is registered in this city, so no residence registration or permit is needed.")


@operation("residence_registration")
def residence_registration(ctx: OpContext) -> dict[str, Any]:
    """H19: register residence at a leased address; moving within the city keeps the residence start."""
    person = need_resident(ctx)
    _non_local(ctx, person)
    lease = _lease(ctx, person)
    previous = ctx.row("SELECT * FROM residence_registrations WHERE id_number = ? AND active = 1",
                       person["id_number"])
    since = previous["resident_since"] if previous else field(ctx, "move_in_date") or today(ctx).isoformat()
    ctx.db.execute("UPDATE residence_registrations SET active = 0 WHERE id_number = ?", (person["id_number"],))
    number = ctx.new_reference("JZDJ")
    ctx.db.execute("INSERT INTO residence_registrations VALUES (?, ?, ?, ?, ?, ?, 1)",
                   (number, person["id_number"], field(ctx, "address") or lease["address"], lease["contract_number"],
                    today(ctx).isoformat(), since))
    return {"reference": number,
            "display": [line("居住登记编号", "Registration number", number),
                        line("居住地址", "Address", field(ctx, "address") or lease["address"]),
                        line("连续居住起始", "Resident since", since)],
            "data": {"registration_number": number, "resident_since": since}}


@operation("residence_permit_application")
def residence_permit_application(ctx: OpContext) -> dict[str, Any]:
    """H20: a residence permit after six months of registered residence, without a valid permit."""
    person = need_resident(ctx)
    _non_local(ctx, person)
    lease = _lease(ctx, person)
    reg = ctx.row("SELECT * FROM residence_registrations WHERE id_number = ? AND active = 1", person["id_number"])
    if reg is None or add_months(date.fromisoformat(reg["resident_since"]), 6) > today(ctx):
        ctx.refuse("residence_too_short", "办理居住登记满半年后方可申领居住证。",
                   "A residence permit needs six months of registered residence.",
                   "请先办理“居住登记”", "register your residence first")
    permit = ctx.row("SELECT * FROM residence_permits WHERE id_number = ? AND valid_to >= ?", person["id_number"],
                     today(ctx).isoformat())
    if permit is not None:
        ctx.refuse("permit_exists", f"您已持有有效居住证（有效期至{permit['valid_to']}）。",
                   f"You already hold a valid residence permit (until {permit['valid_to']}).")
    if pending_case(ctx, ("H20",)):
        ctx.refuse("case_pending", "您已有正在办理的居住证申领。", "A residence permit application is already in progress.")
    case = open_case(ctx, prefix="JZZ", category="residence", title_zh="居住证申领", title_en="Residence permit",
                     status_zh="已受理，制证中", status_en="Accepted, in production", handler_zh="居住地派出所",
                     due_days=15, details={"lease": lease["contract_number"], "basis": field(ctx, "basis")})
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("居住地址", "Address", lease["address"])],
            "data": {"case_number": case["case_number"]}}


@operation("residence_permit_endorsement")
def residence_permit_endorsement(ctx: OpContext) -> dict[str, Any]:
    """H21: the yearly endorsement of an existing permit, from 30 days before expiry."""
    person = need_resident(ctx)
    permit = ctx.row("SELECT * FROM residence_permits WHERE id_number = ? ORDER BY valid_to DESC",
                     person["id_number"])
    if permit is None:
        ctx.refuse("no_residence_permit", "您没有居住证，不能签注。", "You hold no residence permit to endorse.",
                   "请先办理“居住证申领”", "apply for a residence permit first")
    _lease(ctx, person)
    valid_to = date.fromisoformat(permit["valid_to"])
    if today(ctx) < valid_to - timedelta(days=30):
        ctx.refuse("endorsement_too_early", f"居住证有效期至{valid_to}，期满前30日内方可签注。",
                   f"Your permit is valid until {valid_to}; endorse it within 30 days of that date.")
    new_valid_to = add_months(max(valid_to, today(ctx)), 12).isoformat()
    ctx.db.execute("UPDATE residence_permits SET valid_to = ?, endorsements = endorsements + 1 WHERE permit_number = ?",
                   (new_valid_to, permit["permit_number"]))
    return {"display": [line("居住证号", "Permit number", permit["permit_number"]),
                        line("签注后有效期至", "Valid until", new_valid_to),
                        line("累计签注", "Endorsements", permit["endorsements"] + 1)],
            "data": {"permit_number": permit["permit_number"], "valid_to": new_valid_to}}


@operation("residence_permit_points")
def residence_permit_points(ctx: OpContext) -> dict[str, Any]:
    """H22: the points of the resident's permit, item by item."""
    person = need_resident(ctx)
    permit = ctx.row("SELECT * FROM residence_permits WHERE id_number = ?", person["id_number"])
    if permit is None:
        ctx.refuse("no_residence_permit", "您没有居住证，无积分记录。", "You hold no residence permit, so there are no points.")
    rows = ctx.rows("SELECT * FROM residence_permit_points WHERE id_number = ?", person["id_number"])
    total = sum(r["points"] for r in rows)
    display = [line("居住证号", "Permit number", permit["permit_number"]), line("积分合计", "Total points", total)]
    display += [line(r["category_zh"], r["category_en"], f"{r['points']}（{r['note']}）") for r in rows]
    return {"display": display, "data": {"total_points": total}}
