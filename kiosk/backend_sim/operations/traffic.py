"""Traffic items (T01-T18): violations, fines, driving licences, vehicles, plates, accidents.

Own tables: ``vehicles``, ``violations`` (status unhandled → handled (decision issued,
fine due) → paid), ``driving_licences``, ``medical_exams``, ``new_vehicle_sales``,
``temporary_plates``, ``plate_orders``, ``accidents``, ``inspection_labels``.
Only fine-only violations without points are handled at the kiosk; the rest are shown
with the counter to visit. Late fines carry 3% a day, never more than the fine itself.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from typing import Any

from kiosk.backend_sim.db import now
from kiosk.backend_sim.operations._common import (
    WHERE_TRAFFIC_EN, WHERE_TRAFFIC_ZH, WHERE_VEHICLE_EN, WHERE_VEHICLE_ZH, add_months, appointment_lines,
    Both, book_slot, both, case_lines, fen, field, line, need_resident, open_case, pending_case, require_payment, today)
from kiosk.backend_sim.registry import OpContext, lookup, operation
from kiosk.backend_sim.seed import SUN_LI, WANG_SIQI, WANG_XIAOMING, ZHANG_WEI, ZHAO_GUOQIANG

SCHEMA = """
CREATE TABLE IF NOT EXISTS vehicles (
    plate TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    vehicle_type TEXT NOT NULL,        -- 小型轿车, 小型普通客车, 小型面包车 ...
    use_type TEXT NOT NULL,            -- 非营运, 营运
    brand TEXT NOT NULL,
    model TEXT NOT NULL,
    color TEXT NOT NULL,
    vin TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    inspection_valid_to TEXT NOT NULL,
    insurance_valid_to TEXT NOT NULL,
    scrap_on TEXT NOT NULL,
    status TEXT NOT NULL,              -- 正常, 查封, 被盗抢
    mortgaged INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS violations (
    violation_id TEXT PRIMARY KEY,
    plate TEXT NOT NULL,
    driver_id TEXT,                    -- the licence it is booked on, when known
    occurred_at TEXT NOT NULL,
    place TEXT NOT NULL,
    act_code TEXT NOT NULL,
    act_zh TEXT NOT NULL,
    act_en TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    fine_fen INTEGER NOT NULL,
    points INTEGER NOT NULL,
    status TEXT NOT NULL,              -- unhandled, handled, paid
    decision_number TEXT,
    handled_on TEXT,
    pay_by TEXT,
    paid_fen INTEGER,
    paid_at TEXT
);
CREATE TABLE IF NOT EXISTS driving_licences (
    id_number TEXT PRIMARY KEY,
    file_number TEXT NOT NULL,
    classes TEXT NOT NULL,
    first_issued TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    status TEXT NOT NULL               -- 正常, 暂扣, 吊销, 超分
);
CREATE TABLE IF NOT EXISTS medical_exams (
    exam_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    exam_date TEXT NOT NULL,
    hospital TEXT NOT NULL,
    result TEXT NOT NULL,              -- 合格, 不合格
    submitted_at TEXT
);
CREATE TABLE IF NOT EXISTS new_vehicle_sales (
    vin TEXT PRIMARY KEY,
    buyer_id TEXT NOT NULL,
    invoice_number TEXT NOT NULL,
    brand TEXT NOT NULL,
    model TEXT NOT NULL,
    registered INTEGER NOT NULL DEFAULT 0,
    temp_plates_issued INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS temporary_plates (
    plate TEXT PRIMARY KEY,
    vin TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plate_orders (
    order_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    plate TEXT NOT NULL,
    vin TEXT NOT NULL,
    status TEXT NOT NULL               -- ready, appointed, collected
);
CREATE TABLE IF NOT EXISTS accidents (
    accident_number TEXT PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    place TEXT NOT NULL,
    determined INTEGER NOT NULL,
    summary_zh TEXT NOT NULL,
    parties TEXT NOT NULL,             -- JSON [{id_number, name, plate, liability_zh}]
    determined_on TEXT,
    unit TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accident_parties (
    accident_number TEXT NOT NULL REFERENCES accidents(accident_number),
    id_number TEXT NOT NULL,
    PRIMARY KEY (accident_number, id_number)
);
CREATE TABLE IF NOT EXISTS inspection_labels (
    label_number TEXT PRIMARY KEY,
    plate TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
"""

BRIGADE = "济南市公安局交通警察支队历下区大队"
EXEMPT_TYPES = ("小型轿车", "小型普通客车", "微型轿车", "小型越野客车")
PARKING_BASIS = "《中华人民共和国道路交通安全法》第五十六条、第九十三条"
LINE_BASIS = "《中华人民共和国道路交通安全法》第三十八条、第九十条"
LIGHT_BASIS = "《中华人民共和国道路交通安全法》第二十六条、第三十八条、第九十条"
SPEED_BASIS = "《中华人民共和国道路交通安全法》第四十二条、第九十条"
VIN_NEW = "LFV2A21K6R3045678"       # 王思琪's new car, not yet registered: T12 happy path
VIN_LIMIT = "LGBH52E05RY123456"     # 张伟's: three temporary plates already
EXAM_UNSUBMITTED = "3701022026110002"  # 孙丽's check, waiting to be declared (T09)


def seed(conn: sqlite3.Connection) -> None:
    """Vehicles, violations, licences, medical checks, sales, plate orders and accidents (dates relative to today)."""
    t = now().date()
    d = lambda days: (t + timedelta(days=days)).isoformat()  # noqa: E731 - a table of relative dates reads best so
    conn.executemany("INSERT INTO vehicles VALUES (?, ?, ?, '非营运', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", [
        ("鲁A12345", WANG_XIAOMING, "小型轿车", "大众", "朗逸", "白", "LSVAU2180J2123456", "2018-05-20",
         add_months(t, 5).isoformat(), add_months(t, 4).isoformat(), "2033-05-20", "正常"),
        ("鲁AD12345", WANG_XIAOMING, "小型轿车", "比亚迪", "秦PLUS DM-i", "蓝", "LGXCE4CB5P0123456",
         add_months(t, -37).isoformat(), d(20), add_months(t, 8).isoformat(), "2038-01-01", "正常"),
        ("鲁A7B521", ZHANG_WEI, "小型轿车", "丰田", "卡罗拉", "灰", "LFMAP86C8L0123456", "2020-09-01",
         add_months(t, 9).isoformat(), add_months(t, 6).isoformat(), "2035-09-01", "正常"),
        ("鲁A3C908", ZHAO_GUOQIANG, "小型轿车", "别克", "英朗", "黑", "LSGPC54R6GF123456", "2016-04-10",
         add_months(t, 2).isoformat(), add_months(t, 1).isoformat(), "2031-04-10", "查封"),
    ])
    conn.executemany("INSERT INTO violations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", [
        ("WF0001", "鲁A12345", WANG_XIAOMING, d(-20) + "T08:42", "历下区泉城路与舜井街路口", "1039",
         "机动车违反规定停放、临时停车，驾驶人不在现场，妨碍其他车辆、行人通行", "Parked illegally, driver absent",
         PARKING_BASIS, 10000, 0, "unhandled", None, None, None),
        ("WF0002", "鲁A12345", WANG_XIAOMING, d(-12) + "T17:15", "经十路燕山立交桥东侧", "1345",
         "驾驶机动车违反禁止标线指示", "Crossed a prohibition marking", LINE_BASIS, 20000, 1, "unhandled",
         None, None, None),
        ("WF0003", "鲁A12345", WANG_XIAOMING, d(-40) + "T12:03", "历下区历山路省立医院东侧", "1039",
         "机动车违反规定停放、临时停车，驾驶人不在现场，妨碍其他车辆、行人通行", "Parked illegally, driver absent",
         PARKING_BASIS, 10000, 0, "handled", "37010220240000311", d(-30), d(-15)),
        ("WF0004", "鲁A7B521", ZHANG_WEI, d(-25) + "T21:30", "二环东路与花园路路口", "1625",
         "驾驶机动车违反道路交通信号灯通行", "Ran a red light", LIGHT_BASIS, 20000, 6, "unhandled", None, None, None),
        ("WF0005", "鲁A7B521", ZHANG_WEI, d(-100) + "T10:10", "旅游路（限速60）", "1352",
         "驾驶机动车超过规定时速10%以上未达到20%", "Speeding by 10-20%", SPEED_BASIS, 10000, 1, "paid",
         "37010420240000088", d(-95), d(-80)),
    ])
    conn.execute("UPDATE violations SET paid_fen = 10000, paid_at = ? WHERE violation_id = 'WF0005'", (d(-90),))
    conn.executemany("INSERT INTO driving_licences VALUES (?, ?, 'C1', ?, ?, ?)", [
        (WANG_XIAOMING, "370100562031", "2006-07-01", d(60), "正常"),
        (ZHANG_WEI, "370100785412", "2012-03-15", "2032-03-15", "正常"),
        (SUN_LI, "370100698820", "2010-08-01", "2030-08-01", "正常"),
        (ZHAO_GUOQIANG, "370100100235", "1990-05-01", "2029-05-01", "暂扣"),
    ])
    conn.executemany("INSERT INTO medical_exams VALUES (?, ?, ?, ?, '合格', ?)", [
        ("3701022026090001", WANG_XIAOMING, d(-40), "济南市第四人民医院", d(-39)),
        (EXAM_UNSUBMITTED, SUN_LI, d(-10), "山东省立医院东院", None),
    ])
    conn.executemany("INSERT INTO new_vehicle_sales VALUES (?, ?, ?, ?, ?, 0, ?)", [
        (VIN_NEW, WANG_SIQI, "24370000888888", "大众", "ID.4 CROZZ", 0),
        (VIN_LIMIT, ZHANG_WEI, "24370000777777", "五菱", "缤果", 3),
        ("LSGKB54H8PA087654", SUN_LI, "24370000666666", "别克", "GL8", 1),
    ])
    conn.execute("INSERT INTO plate_orders VALUES ('HP20240001', ?, '鲁A5K8M2', 'LSGKB54H8PA087654', 'ready')", (SUN_LI,))
    conn.executemany("INSERT INTO accidents VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        ("SG37010220240101", d(-50) + "T07:55", "二环东路与花园路路口南50米", 1,
         "鲁A7B521小型轿车与鲁B6M338小型轿车同向行驶时发生追尾，造成两车损坏，无人员伤亡。",
         json.dumps([{"id_number": ZHANG_WEI, "name": "张伟", "plate": "鲁A7B521", "liability_zh": "次要责任"},
                     {"id_number": "", "name": "李某", "plate": "鲁B6M338", "liability_zh": "主要责任"}],
                    ensure_ascii=False), d(-40), "济南市公安局交通警察支队历城区大队"),
        ("SG37010220240155", d(-5) + "T18:20", "工业南路与凤鸣路路口", 0,
         "鲁A12345小型轿车与电动自行车发生碰撞，正在调查。",
         json.dumps([{"id_number": WANG_XIAOMING, "name": "王小明", "plate": "鲁A12345", "liability_zh": "待认定"}],
                    ensure_ascii=False), None, "济南市公安局交通警察支队高新区大队"),
    ])
    conn.executemany("INSERT INTO accident_parties VALUES (?, ?)",
                     [("SG37010220240101", ZHANG_WEI), ("SG37010220240155", WANG_XIAOMING)])


# --- helpers -----------------------------------------------------------------------------------
def _my_plates(ctx: OpContext, id_number: str) -> list[str]:
    return [r["plate"] for r in ctx.rows("SELECT plate FROM vehicles WHERE owner_id = ?", id_number)]


def _violations_of(ctx: OpContext, id_number: str, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    plates = _my_plates(ctx, id_number)
    marks = ",".join("?" * len(statuses))
    pmarks = ",".join("?" * len(plates)) or "''"
    return ctx.rows(f"SELECT * FROM violations WHERE status IN ({marks}) AND (driver_id = ? OR plate IN ({pmarks}))"
                    " ORDER BY occurred_at DESC", *statuses, id_number, *plates)


def amount_due(violation: dict[str, Any], day: date) -> tuple[int, int]:
    """(fine, late surcharge) in fen: 3% of the fine per day after the deadline, capped at the fine."""
    fine = int(violation["fine_fen"])
    if not violation.get("pay_by"):
        return fine, 0
    late_days = (day - date.fromisoformat(violation["pay_by"])).days
    return fine, min(fine, fine * 3 * max(0, late_days) // 100)


def _kiosk_ok(v: dict[str, Any]) -> bool:
    return int(v["points"]) == 0


def _where(v: dict[str, Any]) -> Both:
    return both("可在本机处理", "at this kiosk") if _kiosk_ok(v) else both("须到窗口处理", "at a counter")


def _licence(ctx: OpContext, id_number: str) -> dict[str, Any]:
    lic = ctx.row("SELECT * FROM driving_licences WHERE id_number = ?", id_number)
    if lic is None:
        ctx.refuse("no_driving_licence", "未查询到您的机动车驾驶证。", "No driving licence was found for you.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    return lic


def _cycle_start(lic: dict[str, Any], day: date) -> date:
    """The 12-month scoring cycle runs from the anniversary of the first issue."""
    first = date.fromisoformat(lic["first_issued"])
    start = first.replace(year=day.year)
    return start if start <= day else first.replace(year=day.year - 1)


def _cycle_points(ctx: OpContext, lic: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    start = _cycle_start(lic, today(ctx)).isoformat()
    rows = ctx.rows("SELECT * FROM violations WHERE driver_id = ? AND points > 0 AND status IN ('handled', 'paid')"
                    " AND occurred_at >= ? ORDER BY occurred_at", lic["id_number"], start)
    return sum(int(r["points"]) for r in rows), rows


def _own_vehicle(ctx: OpContext, person: dict[str, Any], plate_field: str = "plate") -> dict[str, Any]:
    vehicle = ctx.row("SELECT * FROM vehicles WHERE plate = ? AND owner_id = ?", field(ctx, plate_field).upper(),
                      person["id_number"])
    if vehicle is None:
        ctx.refuse("vehicle_not_found", "该号牌的机动车不在您名下。", "No vehicle with this plate is registered to you.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    return vehicle


def _violation_lines(v: dict[str, Any]) -> list[dict[str, str]]:
    """A violation as two lines: when and where (data), then what and where to handle it (worded)."""
    where, when = _where(v), v["occurred_at"].replace("T", " ")
    return [line(when, when, f"{v['plate']} {v['place']}"),
            line("违法行为", "Violation", both(
                f"{v['act_zh']} 罚款{v['fine_fen'] // 100}元 记{v['points']}分 {where.zh}",
                f"{v['act_en']}, fine {v['fine_fen'] // 100} CNY, {v['points']} points, {where.en}"))]


# --- T01-T03: violations -----------------------------------------------------------------------
@operation("traffic_violation_query")
def traffic_violation_query(ctx: OpContext) -> dict[str, Any]:
    """T01: open violations on the resident's licence and vehicles, and where each can be handled."""
    person = need_resident(ctx)
    open_ = _violations_of(ctx, person["id_number"], ("unhandled", "handled"))
    unhandled = [v for v in open_ if v["status"] == "unhandled"]
    display = [line("未处理违法", "Unhandled violations", len(unhandled)),
               line("已处理未缴款", "Handled, fine unpaid", len(open_) - len(unhandled))]
    display += [shown for v in unhandled for shown in _violation_lines(v)]
    if any(not _kiosk_ok(v) for v in unhandled):
        display.append(line("记分违法处理地点", "Violations with points", both(WHERE_TRAFFIC_ZH, WHERE_TRAFFIC_EN)))
    return {"display": display,
            "data": {"violations": [{"violation_id": v["violation_id"], "plate": v["plate"], "points": v["points"],
                                     "fine_fen": v["fine_fen"], "status": v["status"], "kiosk": _kiosk_ok(v)}
                                    for v in open_]}}


@lookup("unhandled_violations")
def unhandled_violations(ctx: OpContext) -> list[dict[str, Any]]:
    """T02: the resident's unhandled violations; those with points are marked for the counter."""
    return [{"value": v["violation_id"],
             "label_zh": f"{v['occurred_at'][:10]} {v['plate']} {v['act_zh']} 罚款{v['fine_fen'] // 100}元 记{v['points']}分",
             "label_en": f"{v['occurred_at'][:10]} {v['plate']} {v['act_en']}, "
                         f"{v['fine_fen'] // 100} CNY, {v['points']} points",
             "amount_fen": v["fine_fen"], "detail": "kiosk" if _kiosk_ok(v) else "counter"}
            for v in _violations_of(ctx, ctx.id_number or "", ("unhandled",))]


@operation("traffic_violation_handling")
def traffic_violation_handling(ctx: OpContext) -> dict[str, Any]:
    """T02: handle a fine-only violation and issue the simplified-procedure penalty decision."""
    person = need_resident(ctx)
    lic = _licence(ctx, person["id_number"])
    mine = {v["violation_id"]: v for v in _violations_of(ctx, person["id_number"], ("unhandled", "handled", "paid"))}
    v = mine.get(field(ctx, "violation"))
    if v is None:
        ctx.refuse("violation_not_found", "未查询到该条违法记录。", "That violation was not found.")
    if v["status"] != "unhandled":
        ctx.refuse("violation_already_handled", "该违法已处理。", "This violation has already been handled.",
                   "如需缴款请使用“交通违法罚款缴纳”", "pay it with \"Traffic fine payment\"")
    if not _kiosk_ok(v):
        ctx.refuse("violation_needs_counter", f"该违法记{v['points']}分，须到交警窗口接受处理。",
                   f"This violation carries {v['points']} point(s) and must be handled at a counter.",
                   WHERE_TRAFFIC_ZH, WHERE_TRAFFIC_EN)
    if lic["status"] != "正常":
        ctx.refuse("licence_not_valid", f"您的驾驶证状态为{lic['status']}，须到窗口处理。",
                   "Your driving licence is not valid, so violations are handled at a counter.",
                   WHERE_TRAFFIC_ZH, WHERE_TRAFFIC_EN)
    decision = ctx.new_reference("370102")
    pay_by = (today(ctx) + timedelta(days=15)).isoformat()
    ctx.db.execute("UPDATE violations SET status = 'handled', decision_number = ?, handled_on = ?, pay_by = ?,"
                   " driver_id = ? WHERE violation_id = ?",
                   (decision, today(ctx).isoformat(), pay_by, person["id_number"], v["violation_id"]))
    content = {"decision_number": decision, "party_name": person["name"], "id_number": person["id_number"],
               "licence_file_number": lic["file_number"], "licence_class": lic["classes"], "plate": v["plate"],
               "occurred_at": v["occurred_at"].replace("T", " "), "place": v["place"], "act_code": v["act_code"],
               "act": v["act_zh"], "legal_basis": v["legal_basis"], "fine_cny": v["fine_fen"] // 100, "points": 0,
               "pay_by": pay_by, "issuer": BRIGADE,
               "payment_note": "请于15日内缴纳罚款，逾期每日按罚款数额的3%加处罚款，加处罚款总额不超过罚款本数。",
               "appeal_note": "如不服本决定，可在收到本决定书之日起六十日内向济南市人民政府申请行政复议，"
                              "或者在六个月内向人民法院提起行政诉讼。"}
    doc = ctx.issue_document("traffic_penalty_decision", "公安交通管理简易程序处罚决定书",
                             "Traffic penalty decision (simplified procedure)", content)
    return {"reference": decision, "document": doc,
            "display": [line("决定书编号", "Decision number", decision), line("违法行为", "Violation", v["act_zh"]),
                        line("罚款金额", "Fine", fen(v["fine_fen"])), line("记分", "Points", 0),
                        line("缴款期限", "Pay by", pay_by)],
            "data": {"decision_number": decision, "fine_fen": v["fine_fen"], "pay_by": pay_by,
                     "violation_id": v["violation_id"]}}


@lookup("unpaid_fines")
def unpaid_fines(ctx: OpContext) -> list[dict[str, Any]]:
    """T03: handled violations whose fine is unpaid, with the amount due today (late surcharge included)."""
    out = []
    for v in _violations_of(ctx, ctx.id_number or "", ("handled",)):
        fine, late = amount_due(v, today(ctx))
        extra_zh = f"（含加处罚款{late // 100:.0f}元）" if late else ""
        out.append({"value": v["decision_number"],
                    "label_zh": f"{v['decision_number']} {v['act_zh']} 应缴{(fine + late) / 100:.2f}元{extra_zh}",
                    "label_en": f"{v['decision_number']} {v['act_en']}: {(fine + late) / 100:.2f} CNY due",
                    "amount_fen": fine + late, "detail": {"fine_fen": fine, "late_fen": late}})
    return out


@operation("traffic_fine_payment")
def traffic_fine_payment(ctx: OpContext) -> dict[str, Any]:
    """T03: pay a fine (plus any late surcharge) by its decision number."""
    person = need_resident(ctx)
    v = next((x for x in _violations_of(ctx, person["id_number"], ("handled", "paid"))
              if x["decision_number"] == field(ctx, "decision")), None)
    if v is None:
        ctx.refuse("fine_not_found", "未查询到该决定书对应的罚款。", "No fine was found for this decision number.")
    if v["status"] == "paid":
        ctx.refuse("fine_already_paid", "该笔罚款已缴纳。", "This fine is already paid.")
    fine, late = amount_due(v, today(ctx))
    order_id = require_payment(ctx, fine + late)
    ctx.db.execute("UPDATE violations SET status = 'paid', paid_fen = ?, paid_at = ? WHERE violation_id = ?",
                   (fine + late, ctx.now.isoformat(), v["violation_id"]))
    return {"display": [line("决定书编号", "Decision number", v["decision_number"]),
                        line("罚款", "Fine", fen(fine)), line("加处罚款", "Late surcharge", fen(late)),
                        line("实缴金额", "Amount paid", fen(fine + late)), line("支付订单", "Payment order", order_id)],
            "data": {"decision_number": v["decision_number"], "fine_fen": fine, "late_fen": late,
                     "paid_fen": fine + late}}


# --- T04-T09: licences -------------------------------------------------------------------------
@operation("licence_points_query")
def licence_points_query(ctx: OpContext) -> dict[str, Any]:
    """T04: points of the current 12-month cycle, violation by violation."""
    person = need_resident(ctx)
    lic = _licence(ctx, person["id_number"])
    total, rows = _cycle_points(ctx, lic)
    start = _cycle_start(lic, today(ctx))
    display = [line("记分周期", "Scoring cycle", f"{start} — {add_months(start, 12) - timedelta(days=1)}"),
               line("累积记分", "Points", f"{total}/12")]
    display += [line(r["occurred_at"][:10], r["occurred_at"][:10], f"{r['act_zh']} 记{r['points']}分") for r in rows]
    return {"display": display, "data": {"points": total, "cycle_start": start.isoformat()}}


@operation("licence_status_query")
def licence_status_query(ctx: OpContext) -> dict[str, Any]:
    """T05: the licence's status, classes and validity."""
    person = need_resident(ctx)
    lic = _licence(ctx, person["id_number"])
    total, _ = _cycle_points(ctx, lic)
    status = lic["status"]
    if status == "正常" and lic["valid_to"] < today(ctx).isoformat():
        status = "逾期未换证"
    return {"display": [line("档案编号", "File number", lic["file_number"]), line("准驾车型", "Classes", lic["classes"]),
                        line("驾驶证状态", "Status", status), line("有效期至", "Valid until", lic["valid_to"]),
                        line("本周期记分", "Points this cycle", total)],
            "data": {"status": status, "valid_to": lic["valid_to"], "points": total}}


def _licence_case(ctx: OpContext, person: dict[str, Any], title_zh: str, title_en: str) -> dict[str, Any]:
    if pending_case(ctx, (ctx.item_id,)):
        ctx.refuse("case_pending", "您已有正在办理的同类业务。", "The same application of yours is already in progress.")
    order_id = require_payment(ctx, 1000)
    case = open_case(ctx, prefix="JZ", category="licence", title_zh=title_zh, title_en=title_en,
                     status_zh="已受理，制证中", status_en="Accepted, in production", handler_zh="济南市车管所",
                     due_days=5, details={"delivery": field(ctx, "delivery"), "order_id": order_id})
    return {"reference": case["case_number"], "display": case_lines(case) + [line("工本费", "Fee", fen(1000))],
            "data": {"case_number": case["case_number"], "amount_fen": 1000}}


def _licence_usable(ctx: OpContext, lic: dict[str, Any]) -> None:
    if lic["status"] != "正常":
        ctx.refuse("licence_not_valid", f"您的驾驶证状态为{lic['status']}，不能自助办理。",
                   "Your driving licence is suspended, revoked or over points, so this cannot be done here.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)


@operation("licence_renewal")
def licence_renewal(ctx: OpContext) -> dict[str, Any]:
    """T06: renewal within 90 days of expiry, with a medical check from the last six months."""
    person = need_resident(ctx)
    lic = _licence(ctx, person["id_number"])
    _licence_usable(ctx, lic)
    valid_to = date.fromisoformat(lic["valid_to"])
    if today(ctx) < valid_to - timedelta(days=90):
        ctx.refuse("licence_renewal_too_early", f"驾驶证有效期至{valid_to}，期满前90日内方可换证。",
                   f"Your licence is valid until {valid_to}; renew within 90 days of that date.")
    exam = ctx.row("SELECT * FROM medical_exams WHERE id_number = ? AND submitted_at IS NOT NULL AND result = '合格'"
                   " AND exam_date >= ? ORDER BY exam_date DESC", person["id_number"],
                   add_months(today(ctx), -6).isoformat())
    if exam is None:
        ctx.refuse("medical_check_missing", "未查询到6个月内的驾驶人体检信息。",
                   "No driver medical check from the last six months is on file.",
                   "请先体检并使用“驾驶人体检信息申报”", "have a check and use \"Driver medical check submission\"")
    result = _licence_case(ctx, person, "驾驶证期满换证", "Driving licence renewal")
    result["display"].append(line("新证有效期", "New validity", f"{valid_to} — {valid_to.replace(year=valid_to.year + 10)}"))
    return result


@operation("licence_lost_replacement")
def licence_lost_replacement(ctx: OpContext) -> dict[str, Any]:
    """T07: replace a lost licence (not while suspended, revoked or over points)."""
    person = need_resident(ctx)
    _licence_usable(ctx, _licence(ctx, person["id_number"]))
    return _licence_case(ctx, person, "驾驶证遗失补证", "Driving licence replacement (lost)")


@operation("licence_damaged_replacement")
def licence_damaged_replacement(ctx: OpContext) -> dict[str, Any]:
    """T08: replace a damaged licence."""
    person = need_resident(ctx)
    _licence_usable(ctx, _licence(ctx, person["id_number"]))
    return _licence_case(ctx, person, "驾驶证损毁换证", "Driving licence replacement (damaged)")


@operation("driver_medical_submission")
def driver_medical_submission(ctx: OpContext) -> dict[str, Any]:
    """T09: declare a medical check the hospital uploaded; number, person and date must match."""
    person = need_resident(ctx)
    _licence(ctx, person["id_number"])
    exam = ctx.row("SELECT * FROM medical_exams WHERE exam_number = ?", field(ctx, "exam_number"))
    if exam is None or exam["id_number"] != person["id_number"] or exam["exam_date"] != field(ctx, "exam_date"):
        ctx.refuse("medical_record_not_found", "未查询到与体检编号、日期相符的体检记录。",
                   "No medical check matches this number and date.",
                   "请核对体检证明，或联系体检医院上传结果", "check the certificate or ask the hospital to upload it")
    if exam["submitted_at"]:
        ctx.refuse("medical_already_submitted", "该体检信息已申报。", "This medical check is already declared.")
    if exam["result"] != "合格":
        ctx.refuse("medical_unfit", "体检结论为不合格。", "The medical check found you unfit to drive.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    ctx.db.execute("UPDATE medical_exams SET submitted_at = ? WHERE exam_number = ?",
                   (ctx.now.isoformat(), exam["exam_number"]))
    valid = add_months(date.fromisoformat(exam["exam_date"]), 6).isoformat()
    return {"reference": exam["exam_number"],
            "display": [line("体检编号", "Check number", exam["exam_number"]), line("体检医院", "Hospital", exam["hospital"]),
                        line("体检结论", "Result", both("合格", "fit")), line("用于换证有效至", "Valid for renewal until", valid)],
            "data": {"exam_number": exam["exam_number"], "valid_until": valid}}


# --- T10-T15: vehicles -------------------------------------------------------------------------
@lookup("my_vehicles")
def my_vehicles(ctx: OpContext) -> list[dict[str, Any]]:
    """The resident's registered vehicles."""
    return [{"value": v["plate"], "label_zh": f"{v['plate']} {v['brand']}{v['model']}",
             "label_en": f"{v['plate']} {v['brand']} {v['model']}", "detail": v["status"]}
            for v in ctx.rows("SELECT * FROM vehicles WHERE owner_id = ? ORDER BY plate", ctx.id_number or "")]


@operation("inspection_exempt_label")
def inspection_exempt_label(ctx: OpContext) -> dict[str, Any]:
    """T10: the two-yearly label for a private small car under six years, all violations settled."""
    person = need_resident(ctx)
    vehicle = _own_vehicle(ctx, person)
    if vehicle["use_type"] != "非营运" or vehicle["vehicle_type"] not in EXEMPT_TYPES:
        ctx.refuse("not_exempt_vehicle", "仅非营运小型、微型载客汽车可免检领标。",
                   "Only private small passenger cars are exempt from the inspection line.",
                   "机动车检验机构", "a vehicle inspection station")
    registered = date.fromisoformat(vehicle["registered_on"])
    if today(ctx) >= add_months(registered, 72):
        ctx.refuse("inspection_required", "车辆注册登记已满6年，须到检验机构上线检验。",
                   "The vehicle was registered six or more years ago and must be inspected at a station.",
                   "机动车检验机构", "a vehicle inspection station")
    if vehicle["insurance_valid_to"] < today(ctx).isoformat():
        ctx.refuse("insurance_expired", "交强险已过期。", "The compulsory insurance has expired.")
    unsettled = ctx.rows("SELECT violation_id FROM violations WHERE plate = ? AND status IN ('unhandled', 'handled')",
                         vehicle["plate"])
    if unsettled:
        ctx.refuse("violations_unsettled", f"该车有{len(unsettled)}条违法未处理完毕，请先处理并缴款。",
                   f"This vehicle has {len(unsettled)} violation(s) not settled; settle them first.",
                   "可使用“交通违法处理”“交通违法罚款缴纳”", "use \"Traffic violation handling\" and \"Traffic fine payment\"")
    current = date.fromisoformat(vehicle["inspection_valid_to"])
    valid_to = add_months(max(current, today(ctx)), 24).isoformat()
    label = ctx.new_reference("JYBZ")
    ctx.db.execute("INSERT INTO inspection_labels VALUES (?, ?, ?, ?)", (label, vehicle["plate"], valid_to,
                                                                       ctx.now.isoformat()))
    ctx.db.execute("UPDATE vehicles SET inspection_valid_to = ? WHERE plate = ?", (valid_to, vehicle["plate"]))
    return {"reference": label,
            "display": [line("检验标志编号", "Label number", label), line("号牌号码", "Plate", vehicle["plate"]),
                        line("检验有效期至", "Inspection valid until", valid_to),
                        line("电子标志", "Electronic label", both("已发放至交管12123", "sent to the 12123 app"))],
            "data": {"label_number": label, "valid_to": valid_to, "plate": vehicle["plate"]}}


@operation("vehicle_licence_replacement")
def vehicle_licence_replacement(ctx: OpContext) -> dict[str, Any]:
    """T11: replace the vehicle licence of a vehicle in normal status."""
    person = need_resident(ctx)
    vehicle = _own_vehicle(ctx, person)
    if vehicle["status"] != "正常":
        ctx.refuse("vehicle_not_normal", f"车辆状态为{vehicle['status']}，不能自助补领行驶证。",
                   "The vehicle is not in normal status, so its licence cannot be replaced here.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    order_id = require_payment(ctx, 1000)
    case = open_case(ctx, prefix="XS", category="vehicle", title_zh="机动车行驶证补领", title_en="Vehicle licence replacement",
                     status_zh="已受理，制证中", status_en="Accepted, in production", handler_zh="济南市车管所",
                     due_days=3, details={"plate": vehicle["plate"], "order_id": order_id})
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("号牌号码", "Plate", vehicle["plate"]), line("工本费", "Fee", fen(1000))],
            "data": {"case_number": case["case_number"], "plate": vehicle["plate"]}}


@operation("temporary_plate_application")
def temporary_plate_application(ctx: OpContext) -> dict[str, Any]:
    """T12: a 15-day temporary plate for the buyer of an unregistered new vehicle, at most three."""
    person = need_resident(ctx)
    vin = field(ctx, "vin").upper()
    sale = ctx.row("SELECT * FROM new_vehicle_sales WHERE vin = ? AND buyer_id = ?", vin, person["id_number"])
    if sale is None:
        ctx.refuse("vin_not_found", "未查询到您购买该车辆的销售记录。", "No sale of this vehicle to you was found.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    if sale["invoice_number"] != field(ctx, "invoice_number"):
        ctx.refuse("invoice_mismatch", "发票号码与销售记录不一致。", "The invoice number does not match the sale record.")
    if sale["registered"]:
        ctx.refuse("vehicle_already_registered", "该车已注册登记，无需临时号牌。", "This vehicle is already registered.")
    if sale["temp_plates_issued"] >= 3:
        ctx.refuse("temp_plate_limit", "同一车辆临时号牌最多申领3次。", "A vehicle can get at most three temporary plates.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    order_id = require_payment(ctx, 500)
    seq = ctx.db.execute("INSERT INTO sequences(prefix, value) VALUES ('TEMP', 1) ON CONFLICT(prefix)"
                         " DO UPDATE SET value = value + 1 RETURNING value").fetchone()[0]
    plate = f"鲁A{seq:05d}临"
    valid_to = (today(ctx) + timedelta(days=14)).isoformat()
    ctx.db.execute("INSERT INTO temporary_plates VALUES (?, ?, ?, ?)", (plate, vin, today(ctx).isoformat(), valid_to))
    ctx.db.execute("UPDATE new_vehicle_sales SET temp_plates_issued = temp_plates_issued + 1 WHERE vin = ?", (vin,))
    return {"reference": plate,
            "display": [line("临时号牌", "Temporary plate", plate), line("车辆", "Vehicle", f"{sale['brand']} {sale['model']}"),
                        line("有效期", "Valid", f"{today(ctx)} — {valid_to}"),
                        line("已申领次数", "Issued so far", f"{sale['temp_plates_issued'] + 1}/3"),
                        line("支付订单", "Payment order", order_id)],
            "data": {"plate": plate, "valid_to": valid_to}}


@lookup("plates_ready")
def plates_ready(ctx: OpContext) -> list[dict[str, Any]]:
    """T13: the resident's finished plates awaiting collection."""
    return [{"value": r["order_number"], "label_zh": f"{r['plate']}（已制作完成）", "label_en": f"{r['plate']} (ready)"}
            for r in ctx.rows("SELECT * FROM plate_orders WHERE id_number = ? AND status = 'ready'", ctx.id_number or "")]


@operation("plate_pickup_appointment")
def plate_pickup_appointment(ctx: OpContext) -> dict[str, Any]:
    """T13: book collection of finished plates."""
    person = need_resident(ctx)
    order = ctx.row("SELECT * FROM plate_orders WHERE order_number = ? AND id_number = ?", field(ctx, "plate_order"),
                    person["id_number"])
    if order is None or order["status"] != "ready":
        ctx.refuse("no_plate_ready", "没有待领取的号牌。", "There is no finished plate for you to collect.",
                   WHERE_VEHICLE_ZH, WHERE_VEHICLE_EN)
    appt = book_slot(ctx, "T13", field(ctx, "slot"), details={"plate": order["plate"]})
    ctx.db.execute("UPDATE plate_orders SET status = 'appointed' WHERE order_number = ?", (order["order_number"],))
    return {"reference": appt["appointment_number"],
            "display": appointment_lines(appt) + [line("号牌号码", "Plate", order["plate"])],
            "data": {"appointment_number": appt["appointment_number"], "plate": order["plate"],
                     "starts_at": appt["starts_at"]}}


@operation("vehicle_information_query")
def vehicle_information_query(ctx: OpContext) -> dict[str, Any]:
    """T14: a vehicle's registration, inspection, insurance, scrapping date and status."""
    person = need_resident(ctx)
    v = _own_vehicle(ctx, person)
    return {"display": [line("号牌号码", "Plate", v["plate"]), line("品牌型号", "Make and model", f"{v['brand']} {v['model']}"),
                        line("车辆类型", "Type", f"{v['vehicle_type']}（{v['use_type']}）"), line("车身颜色", "Colour", v["color"]),
                        line("车辆识别代号", "VIN", v["vin"][:6] + "*******" + v["vin"][-4:]),
                        line("注册登记日期", "Registered on", v["registered_on"]),
                        line("检验有效期至", "Inspection valid until", v["inspection_valid_to"]),
                        line("交强险有效期至", "Insurance valid until", v["insurance_valid_to"]),
                        line("强制报废期止", "Scrap by", v["scrap_on"]), line("车辆状态", "Status", v["status"]),
                        line("抵押", "Mortgaged", both("是", "yes") if v["mortgaged"] else both("否", "no"))],
            "data": {"plate": v["plate"], "status": v["status"], "inspection_valid_to": v["inspection_valid_to"]}}


@operation("vehicle_violation_record")
def vehicle_violation_record(ctx: OpContext) -> dict[str, Any]:
    """T15: a printed record of every violation of one of the resident's vehicles."""
    person = need_resident(ctx)
    v = _own_vehicle(ctx, person)
    rows = ctx.rows("SELECT * FROM violations WHERE plate = ? ORDER BY occurred_at DESC", v["plate"])
    status_zh = {"unhandled": "未处理", "handled": "已处理未缴款", "paid": "已处理已缴款"}
    content = {"plate": v["plate"], "owner_name": person["name"], "vehicle": f"{v['brand']} {v['model']}",
               "as_of": today(ctx).isoformat(), "count": len(rows), "issuer": "济南市公安局交通警察支队",
               "violations": [{"occurred_at": r["occurred_at"].replace("T", " "), "place": r["place"],
                               "act": r["act_zh"], "fine_cny": r["fine_fen"] // 100, "points": r["points"],
                               "status": status_zh[r["status"]]} for r in rows]}
    doc = ctx.issue_document("vehicle_violation_record", "机动车交通违法记录", "Vehicle violation record", content)
    return {"document": doc,
            "display": [line("号牌号码", "Plate", v["plate"]), line("违法记录", "Violations on record", len(rows)),
                        line("未处理", "Unhandled", sum(r["status"] == "unhandled" for r in rows)),
                        line("验证码", "Verification code", doc["verification_code"])],
            "data": {"document_id": doc["document_id"], "count": len(rows)}}


# --- T16-T18 -----------------------------------------------------------------------------------
@operation("safe_driving_certificate")
def safe_driving_certificate(ctx: OpContext) -> dict[str, Any]:
    """T16: violations, points and accidents over the chosen years, as a certificate."""
    person = need_resident(ctx)
    lic = _licence(ctx, person["id_number"])
    years = int(field(ctx, "period_years") or "1")
    since = add_months(today(ctx), -12 * years).isoformat()
    rows = ctx.rows("SELECT * FROM violations WHERE driver_id = ? AND occurred_at >= ?", person["id_number"], since)
    accidents = ctx.rows("SELECT a.* FROM accidents a JOIN accident_parties p USING (accident_number)"
                         " WHERE p.id_number = ? AND a.occurred_at >= ?", person["id_number"], since)
    points = sum(int(r["points"]) for r in rows if r["status"] != "unhandled")
    content = {"name": person["name"], "id_number": person["id_number"], "licence_file_number": lic["file_number"],
               "licence_class": lic["classes"], "first_issued": lic["first_issued"], "licence_status": lic["status"],
               "period_from": since, "period_to": today(ctx).isoformat(), "violations": len(rows), "points": points,
               "accidents": len(accidents), "issuer": "济南市公安局交通警察支队",
               "statement": f"经查询，{person['name']}自{since}至{today(ctx)}期间，交通违法{len(rows)}起，"
                            f"累计记分{points}分，涉及道路交通事故{len(accidents)}起。"}
    doc = ctx.issue_document("safe_driving_certificate", "驾驶人安全驾驶证明", "Safe driving certificate", content)
    return {"document": doc,
            "display": [line("证明期间", "Period", f"{since} — {today(ctx)}"), line("交通违法", "Violations", len(rows)),
                        line("累计记分", "Points", points), line("交通事故", "Accidents", len(accidents)),
                        line("验证码", "Verification code", doc["verification_code"])],
            "data": {"document_id": doc["document_id"], "violations": len(rows), "accidents": len(accidents)}}


@operation("accident_quick_settlement")
def accident_quick_settlement(ctx: OpContext) -> dict[str, Any]:
    """T17: a quick-settlement agreement for a minor, injury-free accident."""
    person = need_resident(ctx)
    if field(ctx, "injuries") != "no":
        ctx.refuse("accident_with_injury", "有人员受伤的事故不适用快处快赔，请立即拨打122报警，伤者拨打120。",
                   "Accidents with injuries cannot be settled here: call 122 now, and 120 for the injured.",
                   "拨打122", "call 122")
    if field(ctx, "own_plate").upper() == field(ctx, "other_plate").upper():
        ctx.refuse("accident_same_vehicle", "双方号牌不能相同。", "The two plates cannot be the same.")
    number = ctx.new_reference("KC")
    ctx.db.execute("INSERT INTO accidents VALUES (?, ?, ?, 1, ?, ?, ?, '快处快赔（当事人自行协商）')",
                   (number, field(ctx, "accident_date"), field(ctx, "place"), "轻微财产损失事故，双方自行协商",
                    json.dumps([{"id_number": person["id_number"], "plate": field(ctx, "own_plate"),
                                 "liability": field(ctx, "liability")},
                                {"plate": field(ctx, "other_plate")}], ensure_ascii=False), today(ctx).isoformat()))
    ctx.db.execute("INSERT INTO accident_parties VALUES (?, ?)", (number, person["id_number"]))
    liability = {"own_full": ("本方全部责任", "I am fully liable"), "other_full": ("对方全部责任", "other party fully liable"),
                 "equal": ("同等责任", "equal liability")}.get(field(ctx, "liability"), ("", ""))
    return {"reference": number,
            "display": [line("协议书编号", "Agreement number", number),
                        line("双方号牌", "Plates", f"{field(ctx, 'own_plate')} / {field(ctx, 'other_plate')}"),
                        line("责任", "Liability", both(*liability)),
                        line("理赔", "Insurance claim", both("凭协议书编号向保险公司报案", "give the number to your insurer"))],
            "data": {"agreement_number": number}}


@lookup("my_accidents")
def my_accidents(ctx: OpContext) -> list[dict[str, Any]]:
    """T18: accidents the resident is a party to."""
    return [{"value": a["accident_number"], "label_zh": f"{a['occurred_at'][:10]} {a['place']}" +
             ("" if a["determined"] else "（调查中）"), "label_en": f"{a['occurred_at'][:10]} accident " +
             ("" if a["determined"] else "(under investigation)")}
            for a in ctx.rows("SELECT a.* FROM accidents a JOIN accident_parties p USING (accident_number)"
                              " WHERE p.id_number = ? AND a.unit NOT LIKE '快处快赔%' ORDER BY occurred_at DESC",
                              ctx.id_number or "")]


@operation("accident_determination_print")
def accident_determination_print(ctx: OpContext) -> dict[str, Any]:
    """T18: print the determination of an accident the police have decided."""
    person = need_resident(ctx)
    acc = ctx.row("SELECT a.* FROM accidents a JOIN accident_parties p USING (accident_number)"
                  " WHERE a.accident_number = ? AND p.id_number = ?", field(ctx, "accident"), person["id_number"])
    if acc is None:
        ctx.refuse("accident_not_found", "未查询到您作为当事人的该起事故。", "No such accident lists you as a party.")
    if not acc["determined"]:
        ctx.refuse("accident_not_determined", "该事故尚在调查，未作出认定。",
                   "The accident is still under investigation and has not been decided.",
                   acc["unit"] + "事故处理中队", "the accident unit of " + acc["unit"])
    parties = json.loads(acc["parties"])
    content = {"accident_number": acc["accident_number"], "occurred_at": acc["occurred_at"].replace("T", " "),
               "place": acc["place"], "facts": acc["summary_zh"], "determined_on": acc["determined_on"],
               "parties": [{"name": p.get("name", ""), "plate": p.get("plate", ""), "liability": p.get("liability_zh", "")}
                           for p in parties],
               "legal_basis": "《道路交通事故处理程序规定》第六十条", "issuer": acc["unit"]}
    doc = ctx.issue_document("accident_determination", "道路交通事故认定书", "Road traffic accident determination",
                             content)
    mine = next((p for p in parties if p.get("id_number") == person["id_number"]), {})
    return {"document": doc,
            "display": [line("事故编号", "Accident number", acc["accident_number"]),
                        line("认定日期", "Decided on", acc["determined_on"]),
                        line("本人责任", "Your liability", mine.get("liability_zh", "")),
                        line("验证码", "Verification code", doc["verification_code"])],
            "data": {"document_id": doc["document_id"], "accident_number": acc["accident_number"]}}
