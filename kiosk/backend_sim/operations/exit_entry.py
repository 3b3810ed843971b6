"""Exit-entry items (E01-E09): HK/Macau and Taiwan endorsements, applications, records, photos, fees.

Own tables: ``travel_permits`` (passports and card-type permits, with how many endorsement
records the chip already holds: at most 255), ``approved_endorsement_types`` (a
re-endorsement is self-service only for a type a counter approved before),
``endorsements``, ``exit_entry_applications``, ``border_crossings``, ``photo_receipts``.
A permit is found by its number (the chip read over PC/SC) or by its holder's ID number.
"""
from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

from kiosk.backend_sim.db import now
from kiosk.backend_sim.operations._common import (
    WHERE_EXIT_EN, WHERE_EXIT_ZH, add_months, appointment_lines, book_slot, both, fen, field, line, need_resident,
    require_payment, today)
from kiosk.backend_sim.registry import OpContext, lookup, operation
from kiosk.backend_sim.seed import LI_XIUYING, SUN_LI, WANG_SIQI, WANG_XIAOMING

SCHEMA = """
CREATE TABLE IF NOT EXISTS travel_permits (
    permit_number TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL,
    doc_type TEXT NOT NULL,            -- passport, hkmo_permit, tw_permit
    card_type INTEGER NOT NULL,        -- 1: card with chip (endorsements written to it)
    issued_on TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    endorsements_used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS approved_endorsement_types (
    permit_number TEXT NOT NULL REFERENCES travel_permits(permit_number),
    endorsement_type TEXT NOT NULL,
    PRIMARY KEY (permit_number, endorsement_type)
);
CREATE TABLE IF NOT EXISTS endorsements (
    endorsement_number TEXT PRIMARY KEY,
    permit_number TEXT NOT NULL REFERENCES travel_permits(permit_number),
    destination TEXT NOT NULL,         -- HK, MO, TW
    endorsement_type TEXT NOT NULL,
    trips_total INTEGER NOT NULL,
    trips_left INTEGER NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exit_entry_applications (
    application_number TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    application_type TEXT NOT NULL,    -- first, renewal, lost
    status TEXT NOT NULL,              -- preaccepted, awaiting_fee, in_review, ready, pickup_booked, collected
    fee_fen INTEGER NOT NULL,
    paid_at TEXT,
    created_at TEXT NOT NULL,
    photo_receipt TEXT
);
CREATE TABLE IF NOT EXISTS border_crossings (
    id_number TEXT NOT NULL,
    crossed_on TEXT NOT NULL,
    direction TEXT NOT NULL,           -- exit, entry
    port TEXT NOT NULL,
    document TEXT NOT NULL,
    destination TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS photo_receipts (
    receipt_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    valid_to TEXT NOT NULL
);
"""

CHIP_CAPACITY = 255
ENDORSEMENT_FEE_FEN = 1500
HKMO_TYPES = {"11": ("探亲", "family visit", 3), "12": ("团队旅游", "group tour", 3),
              "1B": ("个人旅游", "individual tour", 12), "1G": ("逗留", "stay", 12), "19": ("其他", "other", 3)}
TW_TYPES = {"T": ("探亲", "family visit"), "S": ("应邀", "invitation"), "F": ("学习", "study"),
            "G": ("个人旅游", "individual tour")}
DOC_NAMES = {"passport": ("普通护照", "passport"), "hkmo_permit": ("往来港澳通行证", "HK/Macau permit"),
             "tw_permit": ("往来台湾通行证", "Taiwan permit")}
DOC_FEES_FEN = {"passport": 12000, "hkmo_permit": 6000, "tw_permit": 6000}
STATUS = {"preaccepted": ("已预受理，待窗口受理", "Pre-accepted, awaiting the counter"),
          "awaiting_fee": ("已受理，待缴费", "Accepted, fee due"), "in_review": ("审批中", "Under review"),
          "ready": ("制证完成，待领取", "Ready for collection"), "pickup_booked": ("已预约领取", "Collection booked"),
          "collected": ("已领取", "Collected")}
PERMIT_WANG = "C12345678"   # the PC/SC simulator's demo chips (kiosk.hardware.simulators.cards)
PERMIT_SUN = "C87654321"
TW_PERMIT_WANG = "L12345678"


def seed(conn: sqlite3.Connection) -> None:
    """Permits with their endorsement history, applications in each state, border crossings."""
    t = now().date()
    d = lambda days: (t + timedelta(days=days)).isoformat()  # noqa: E731 - relative dates read best as a table
    conn.executemany("INSERT INTO travel_permits VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (PERMIT_WANG, WANG_XIAOMING, "hkmo_permit", 1, "2023-07-01", "2033-06-30", 37),
        (PERMIT_SUN, SUN_LI, "hkmo_permit", 1, "2024-03-16", "2034-03-15", CHIP_CAPACITY),
        (TW_PERMIT_WANG, WANG_XIAOMING, "tw_permit", 1, "2021-05-10", "2031-05-09", 3),
        ("E12345678", WANG_XIAOMING, "passport", 0, "2019-09-01", "2029-08-31", 0),
    ])
    conn.executemany("INSERT INTO approved_endorsement_types VALUES (?, ?)", [
        (PERMIT_WANG, "1B"), (PERMIT_WANG, "12"), (PERMIT_SUN, "1B"), (TW_PERMIT_WANG, "T")])
    conn.executemany("INSERT INTO endorsements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        ("QZ20240001", PERMIT_WANG, "HK", "1B", 2, 2, d(-60), "2027-06-30", d(-60)),
        ("QZ20240002", PERMIT_WANG, "MO", "1B", 1, 1, d(-60), "2027-06-30", d(-60)),
        ("QZ20230009", PERMIT_SUN, "HK", "1B", 1, 0, "2024-03-16", "2025-03-15", "2024-03-16"),
    ])
    conn.executemany("INSERT INTO exit_entry_applications VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", [
        ("CR20240001", SUN_LI, "passport", "renewal", "ready", 12000, d(-20), d(-21)),
        ("CR20240002", LI_XIUYING, "hkmo_permit", "first", "awaiting_fee", 6000, None, d(-1)),
        ("CR20240003", WANG_SIQI, "passport", "first", "in_review", 12000, d(-4), d(-5)),
    ])
    conn.executemany("INSERT INTO border_crossings VALUES (?, ?, ?, ?, ?, ?)", [
        (WANG_XIAOMING, d(-400), "exit", "济南遥墙国际机场", "普通护照", "日本"),
        (WANG_XIAOMING, d(-393), "entry", "济南遥墙国际机场", "普通护照", "日本"),
        (WANG_XIAOMING, d(-120), "exit", "深圳湾口岸", "往来港澳通行证", "香港"),
        (WANG_XIAOMING, d(-117), "entry", "深圳湾口岸", "往来港澳通行证", "香港"),
        (WANG_XIAOMING, d(-30), "exit", "港珠澳大桥珠海公路口岸", "往来港澳通行证", "澳门"),
        (WANG_XIAOMING, d(-29), "entry", "港珠澳大桥珠海公路口岸", "往来港澳通行证", "澳门"),
    ])


# --- helpers -----------------------------------------------------------------------------------
def _permit(ctx: OpContext, doc_type: str) -> dict[str, Any]:
    """The permit the chip read names (or the holder's card-type permit); refuses none or an expired one."""
    number = (field(ctx, "permit_number") or ctx.id_number or "").upper()
    permit = ctx.row("SELECT * FROM travel_permits WHERE doc_type = ? AND (permit_number = ? OR holder_id = ?)"
                     " ORDER BY card_type DESC, valid_to DESC", doc_type, number, number)
    name_zh, name_en = DOC_NAMES[doc_type]
    if permit is None:
        ctx.refuse("no_valid_permit", f"未查询到您的{name_zh}。", f"No {name_en} was found for you.",
                   WHERE_EXIT_ZH, WHERE_EXIT_EN)
    if permit["valid_to"] < today(ctx).isoformat():
        ctx.refuse("permit_expired", f"您的{name_zh}已过有效期，请申请换发。", f"Your {name_en} has expired; apply for a new one.",
                   WHERE_EXIT_ZH, WHERE_EXIT_EN)
    if not permit["card_type"]:
        ctx.refuse("permit_not_card_type", "本式证件不能自助签注，请换发卡式证件。",
                   "Booklet permits cannot be endorsed here; change to a card-type permit.", WHERE_EXIT_ZH, WHERE_EXIT_EN)
    return permit


def _approved(ctx: OpContext, permit: dict[str, Any], kind: str, label_zh: str) -> None:
    if not ctx.row("SELECT 1 FROM approved_endorsement_types WHERE permit_number = ? AND endorsement_type = ?",
                   permit["permit_number"], kind):
        ctx.refuse("endorsement_type_not_approved", f"您此前未办理过{label_zh}签注，首次申请须到窗口审批。",
                   "This endorsement type was never approved for you; the first one is approved at a counter.",
                   WHERE_EXIT_ZH, WHERE_EXIT_EN)


def _endorse(ctx: OpContext, permit: dict[str, Any], destination: str, kind: str, trips: int, months: int
             ) -> dict[str, Any]:
    number = ctx.new_reference("QZ")
    valid_to = add_months(today(ctx), months).isoformat()
    ctx.db.execute("INSERT INTO endorsements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (number, permit["permit_number"], destination, kind, trips, trips, today(ctx).isoformat(), valid_to,
                    ctx.now.isoformat()))
    ctx.db.execute("UPDATE travel_permits SET endorsements_used = endorsements_used + ? WHERE permit_number = ?",
                   (trips, permit["permit_number"]))
    return {"endorsement_number": number, "valid_to": valid_to,
            "chip_remaining": CHIP_CAPACITY - permit["endorsements_used"] - trips}


def _holder(ctx: OpContext, permit: dict[str, Any]) -> dict[str, Any]:
    return ctx.row("SELECT name FROM residents WHERE id_number = ?", permit["holder_id"]) or {"name": ""}


# --- E01, E02: endorsements --------------------------------------------------------------------
@operation("hkmo_reendorsement")
def hkmo_reendorsement(ctx: OpContext) -> dict[str, Any]:
    """E01: re-endorse a card-type HK/Macau permit with an approved type; 15 CNY per endorsement; 255 at most."""
    permit = _permit(ctx, "hkmo_permit")
    kind = field(ctx, "endorsement_type")
    if kind not in HKMO_TYPES:
        ctx.refuse("endorsement_type_invalid", "签注种类无效。", "Unknown endorsement type.")
    label_zh, label_en, months = HKMO_TYPES[kind]
    count = int(field(ctx, "count") or "1")
    if count not in (1, 2):
        ctx.refuse("endorsement_count_invalid", "签注次数只能为1次或2次。", "Choose 1 or 2 endorsements.")
    remaining = CHIP_CAPACITY - permit["endorsements_used"]
    if remaining < count:
        ctx.refuse("endorsements_exhausted", f"证件芯片可写入的签注已用完（剩余{remaining}次），请换发新证。",
                   f"The permit chip has room for {remaining} more endorsement(s); apply for a new permit.",
                   WHERE_EXIT_ZH, WHERE_EXIT_EN)
    _approved(ctx, permit, kind, label_zh)
    destination = field(ctx, "destination") or "HK"
    order_id = require_payment(ctx, count * ENDORSEMENT_FEE_FEN)
    result = _endorse(ctx, permit, destination, kind, count, months)
    dest_zh = {"HK": "香港", "MO": "澳门"}.get(destination, destination)
    return {"reference": result["endorsement_number"],
            "display": [line("证件号码", "Permit number", permit["permit_number"]),
                        line("签注", "Endorsement", both(f"{dest_zh}{label_zh}（{kind}）{count}次", f"{label_en} x{count}")),
                        line("有效期至", "Valid until", result["valid_to"]),
                        line("缴费金额", "Fee paid", fen(count * ENDORSEMENT_FEE_FEN)),
                        line("证件剩余可签注次数", "Endorsements the chip can still hold", result["chip_remaining"]),
                        line("支付订单", "Payment order", order_id)],
            "data": {**result, "permit_number": permit["permit_number"], "count": count}}


@operation("taiwan_endorsement")
def taiwan_endorsement(ctx: OpContext) -> dict[str, Any]:
    """E02: a single-entry endorsement on a card-type Taiwan permit; individual tourism is closed here."""
    permit = _permit(ctx, "tw_permit")
    kind = field(ctx, "endorsement_type")
    if kind not in TW_TYPES:
        ctx.refuse("endorsement_type_invalid", "签注种类无效。", "Unknown endorsement type.")
    label_zh, label_en = TW_TYPES[kind]
    if kind == "G":
        ctx.refuse("individual_tour_not_open", "赴台个人旅游签注目前仅对福建省试点地区居民开放。",
                   "Individual travel to Taiwan is open only to residents of the Fujian pilot areas.")
    if CHIP_CAPACITY - permit["endorsements_used"] < 1:
        ctx.refuse("endorsements_exhausted", "证件芯片可写入的签注已用完，请换发新证。",
                   "The permit chip has no room for another endorsement; apply for a new permit.",
                   WHERE_EXIT_ZH, WHERE_EXIT_EN)
    _approved(ctx, permit, kind, label_zh)
    order_id = require_payment(ctx, ENDORSEMENT_FEE_FEN)
    result = _endorse(ctx, permit, "TW", kind, 1, 6)
    return {"reference": result["endorsement_number"],
            "display": [line("证件号码", "Permit number", permit["permit_number"]),
                        line("签注", "Endorsement", both(f"{label_zh}（{kind}）一次有效", f"{label_en}, single entry")),
                        line("有效期至", "Valid until", result["valid_to"]),
                        line("证件剩余可签注次数", "Endorsements the chip can still hold", result["chip_remaining"]),
                        line("支付订单", "Payment order", order_id)],
            "data": {**result, "permit_number": permit["permit_number"]}}


# --- E03-E07 -----------------------------------------------------------------------------------
@operation("exit_entry_preacceptance")
def exit_entry_preacceptance(ctx: OpContext) -> dict[str, Any]:
    """E03: pre-accept an application (refused while exit is restricted or a valid document exists)."""
    person = need_resident(ctx)
    if person["case_under_review"]:
        ctx.refuse("exit_restricted", "您目前不符合出入境证件申请条件。",
                   "You currently cannot apply for exit-entry documents.", WHERE_EXIT_ZH, WHERE_EXIT_EN)
    doc_type, app_type = field(ctx, "document_type"), field(ctx, "application_type")
    if doc_type not in DOC_NAMES:
        ctx.refuse("document_type_invalid", "证件类型无效。", "Unknown document type.")
    name_zh, name_en = DOC_NAMES[doc_type]
    held = ctx.row("SELECT * FROM travel_permits WHERE holder_id = ? AND doc_type = ? AND valid_to >= ?",
                   person["id_number"], doc_type, today(ctx).isoformat())
    if held is not None and app_type == "first":
        ctx.refuse("document_exists", f"您已持有有效的{name_zh}（有效期至{held['valid_to']}），无需首次申请。",
                   f"You already hold a valid {name_en} (until {held['valid_to']}).")
    if ctx.row("SELECT 1 FROM exit_entry_applications WHERE holder_id = ? AND doc_type = ? AND status IN"
               " ('preaccepted', 'awaiting_fee', 'in_review')", person["id_number"], doc_type):
        ctx.refuse("application_pending", f"您已有正在办理的{name_zh}申请。", f"A {name_en} application is already in progress.")
    photo = field(ctx, "photo_receipt").upper()
    if photo and not ctx.row("SELECT 1 FROM photo_receipts WHERE receipt_number = ? AND id_number = ? AND valid_to >= ?",
                             photo, person["id_number"], today(ctx).isoformat()):
        ctx.refuse("photo_receipt_invalid", "相片回执号无效或已过期。", "The photo receipt number is invalid or expired.",
                   "可使用“出入境证件照片采集”重新拍照", "take a new photo with \"Exit-entry document photo capture\"")
    number = ctx.new_reference("YS")
    ctx.db.execute("INSERT INTO exit_entry_applications VALUES (?, ?, ?, ?, 'preaccepted', ?, NULL, ?, ?)",
                   (number, person["id_number"], doc_type, app_type, DOC_FEES_FEN[doc_type], ctx.now.isoformat(),
                    photo or None))
    return {"reference": number,
            "display": [line("预受理号", "Pre-acceptance number", number), line("证件", "Document", both(name_zh, name_en)),
                        line("应缴费用（受理后）", "Fee (after acceptance)", fen(DOC_FEES_FEN[doc_type])),
                        line("办理地点", "Where", both(WHERE_EXIT_ZH, WHERE_EXIT_EN))],
            "data": {"application_number": number, "fee_fen": DOC_FEES_FEN[doc_type]}}


@operation("exit_entry_progress")
def exit_entry_progress(ctx: OpContext) -> dict[str, Any]:
    """E04: the resident's exit-entry applications and their state."""
    person = need_resident(ctx)
    apps = ctx.rows("SELECT * FROM exit_entry_applications WHERE holder_id = ? ORDER BY created_at DESC",
                    person["id_number"])
    display = [line("出入境业务", "Applications", len(apps))]
    for a in apps:
        display += [line("受理编号", "Application", a["application_number"]),
                    line("证件", "Document", DOC_NAMES[a["doc_type"]][0]),
                    line("状态", "Status", both(*STATUS[a["status"]]))]
    return {"display": display,
            "data": {"applications": [{"application_number": a["application_number"], "status": a["status"]}
                                      for a in apps]}}


@operation("exit_entry_records")
def exit_entry_records(ctx: OpContext) -> dict[str, Any]:
    """E05: the resident's border crossings in a period."""
    person = need_resident(ctx)
    start, end = field(ctx, "date_from"), field(ctx, "date_to")
    if not start or not end or end < start:
        ctx.refuse("date_range_invalid", "截止日期不能早于起始日期。", "The end date cannot be before the start date.")
    rows = ctx.rows("SELECT * FROM border_crossings WHERE id_number = ? AND crossed_on BETWEEN ? AND ?"
                    " ORDER BY crossed_on", person["id_number"], start, end)
    display = [line("出入境记录", "Crossings", len(rows))]
    display += [line(r["crossed_on"], r["crossed_on"],
                     f"{'出境' if r['direction'] == 'exit' else '入境'} {r['port']} {r['document']} {r['destination']}")
                for r in rows]
    return {"display": display, "data": {"crossings": len(rows)}}


@operation("remaining_endorsements")
def remaining_endorsements(ctx: OpContext) -> dict[str, Any]:
    """E06: valid endorsements with trips left, and room left on each card permit's chip."""
    person = need_resident(ctx)
    permits = ctx.rows("SELECT * FROM travel_permits WHERE holder_id = ? AND card_type = 1", person["id_number"])
    if not permits:
        ctx.refuse("no_valid_permit", "您没有卡式往来港澳或台湾通行证。", "You hold no card-type HK/Macau or Taiwan permit.",
                   WHERE_EXIT_ZH, WHERE_EXIT_EN)
    display, data = [], []
    for p in permits:
        chip_left = CHIP_CAPACITY - p["endorsements_used"]
        display += [line("证件", "Permit", f"{DOC_NAMES[p['doc_type']][0]} {p['permit_number']}"),
                    line("证件有效期至", "Permit valid until", p["valid_to"]),
                    line("芯片剩余可签注次数", "Endorsements the chip can still hold", chip_left)]
        valid = ctx.rows("SELECT * FROM endorsements WHERE permit_number = ? AND valid_to >= ? AND trips_left > 0",
                         p["permit_number"], today(ctx).isoformat())
        for e in valid:
            display.append(line(f"{e['destination']}签注", f"{e['destination']} endorsement",
                                f"{e['endorsement_type']} 剩余{e['trips_left']}次，有效期至{e['valid_to']}"))
        data.append({"permit_number": p["permit_number"], "chip_remaining": chip_left,
                     "endorsements": [{"destination": e["destination"], "trips_left": e["trips_left"],
                                       "valid_to": e["valid_to"]} for e in valid]})
    return {"display": display, "data": {"permits": data}}


@operation("exit_entry_photo_capture")
def exit_entry_photo_capture(ctx: OpContext) -> dict[str, Any]:
    """E07: record a standard-conforming photo and give its receipt number (six months)."""
    person = need_resident(ctx)
    doc_type = field(ctx, "document_type") or "passport"
    number = ctx.new_reference("XP")
    valid_to = add_months(today(ctx), 6).isoformat()
    ctx.db.execute("INSERT INTO photo_receipts VALUES (?, ?, ?, ?, ?)",
                   (number, person["id_number"], doc_type, ctx.now.isoformat(), valid_to))
    return {"reference": number,
            "display": [line("相片回执号", "Photo receipt number", number),
                        line("用于证件", "For", both(*DOC_NAMES.get(doc_type, ("", "")))),
                        line("有效期至", "Valid until", valid_to)],
            "data": {"receipt_number": number, "valid_to": valid_to}}


# --- E08, E09 ----------------------------------------------------------------------------------
@lookup("exit_entry_fees")
def exit_entry_fees(ctx: OpContext) -> list[dict[str, Any]]:
    """E08: accepted applications whose fee is due."""
    rows = ctx.rows("SELECT * FROM exit_entry_applications WHERE holder_id = ? AND status = 'awaiting_fee'",
                    ctx.id_number or "")
    return [{"value": r["application_number"], "label_zh": f"{DOC_NAMES[r['doc_type']][0]} {fen(r['fee_fen'])}",
             "label_en": f"{DOC_NAMES[r['doc_type']][1]} {r['fee_fen'] / 100:.2f} CNY", "amount_fen": r["fee_fen"]}
            for r in rows]


@operation("exit_entry_fee_payment")
def exit_entry_fee_payment(ctx: OpContext) -> dict[str, Any]:
    """E08: pay an accepted application's fee; it moves on to review."""
    person = need_resident(ctx)
    app = ctx.row("SELECT * FROM exit_entry_applications WHERE application_number = ? AND holder_id = ?",
                  field(ctx, "application"), person["id_number"])
    if app is None:
        ctx.refuse("fee_not_found", "未查询到该笔待缴费用。", "No such fee is due.")
    if app["status"] != "awaiting_fee":
        ctx.refuse("fee_already_paid", "该申请无需缴费或已缴费。", "This application has no fee due.")
    order_id = require_payment(ctx, app["fee_fen"])
    ctx.db.execute("UPDATE exit_entry_applications SET status = 'in_review', paid_at = ? WHERE application_number = ?",
                   (ctx.now.isoformat(), app["application_number"]))
    return {"display": [line("受理编号", "Application", app["application_number"]),
                        line("证件", "Document", both(*DOC_NAMES[app["doc_type"]])),
                        line("缴费金额", "Amount paid", fen(app["fee_fen"])), line("支付订单", "Payment order", order_id),
                        line("当前状态", "Status", both(*STATUS["in_review"]))],
            "data": {"application_number": app["application_number"], "amount_fen": app["fee_fen"]}}


@lookup("exit_entry_ready")
def exit_entry_ready(ctx: OpContext) -> list[dict[str, Any]]:
    """E09: finished documents waiting for collection."""
    rows = ctx.rows("SELECT * FROM exit_entry_applications WHERE holder_id = ? AND status = 'ready'", ctx.id_number or "")
    return [{"value": r["application_number"], "label_zh": f"{DOC_NAMES[r['doc_type']][0]}（{r['application_number']}）",
             "label_en": f"{DOC_NAMES[r['doc_type']][1]} ({r['application_number']})"} for r in rows]


@operation("exit_entry_pickup_appointment")
def exit_entry_pickup_appointment(ctx: OpContext) -> dict[str, Any]:
    """E09: book collection of a finished document."""
    person = need_resident(ctx)
    app = ctx.row("SELECT * FROM exit_entry_applications WHERE application_number = ? AND holder_id = ?",
                  field(ctx, "application"), person["id_number"])
    if app is None or app["status"] != "ready":
        ctx.refuse("document_not_ready", "该证件尚未制作完成，暂不能预约领取。",
                   "This document is not ready yet, so collection cannot be booked.",
                   "可使用“出入境证件办理进度查询”", "see \"Exit-entry progress query\"")
    appt = book_slot(ctx, "E09", field(ctx, "slot"), details={"application": app["application_number"]})
    ctx.db.execute("UPDATE exit_entry_applications SET status = 'pickup_booked' WHERE application_number = ?",
                   (app["application_number"],))
    return {"reference": appt["appointment_number"],
            "display": appointment_lines(appt) + [line("证件", "Document", both(*DOC_NAMES[app["doc_type"]]))],
            "data": {"appointment_number": appt["appointment_number"], "starts_at": appt["starts_at"],
                     "application_number": app["application_number"]}}
