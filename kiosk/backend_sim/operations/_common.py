"""Helpers shared by the item operations: display lines, cases, payments, dates, slots.

Not an operations module itself (the leading underscore keeps registry.discover() away);
the tables these helpers touch (cases, appointment slots) are created and seeded by
``general.py``.
"""
from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any, NamedTuple

from kiosk.backend_sim.registry import OpContext

SEX_ZH = {"male": "男", "female": "女", "unknown": "未知"}

WHERE_STATION_ZH = "户籍地派出所户籍窗口"
WHERE_STATION_EN = "the household registration counter of your police station"
WHERE_TRAFFIC_ZH = "交警大队违法处理窗口（历下大队：历下区解放路112号）"
WHERE_TRAFFIC_EN = "the violation counter of the traffic police brigade (Lixia: 112 Jiefang Road)"
WHERE_VEHICLE_ZH = "车管所业务窗口（济南市车管所：历城区工业北路）"
WHERE_VEHICLE_EN = "the vehicle administration office counter (Gongye North Road, Licheng)"
WHERE_EXIT_ZH = "出入境管理大厅窗口（济南市历下区龙鼎大道1号）"
WHERE_EXIT_EN = "the exit-entry service hall counter (1 Longding Avenue, Lixia)"


class Both(NamedTuple):
    """A display value worded in each language (a status, a verdict), not data to show as it is."""

    zh: str
    en: str


def line(label_zh: str, label_en: str, value: Any) -> dict[str, str]:
    """One display line; the value is always text, and a worded value (:func:`both`) also has ``value_en``."""
    if isinstance(value, Both):
        return {"label_zh": label_zh, "label_en": label_en, "value": value.zh, "value_en": value.en}
    return {"label_zh": label_zh, "label_en": label_en, "value": "" if value is None else str(value)}


def both(zh: str, en: str) -> Both:
    """A display value worded in each language: ``value`` in Chinese, ``value_en`` in English."""
    return Both(zh, en)


def today(ctx: OpContext) -> date:
    """The simulator's calendar day (Beijing time)."""
    return ctx.now.date()


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clamped to the month's last day."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)


def field(ctx: OpContext, name: str, default: str = "") -> str:
    """A form value as trimmed text ('' when absent)."""
    value = ctx.fields.get(name)
    return default if value is None else str(value).strip()


def need_resident(ctx: OpContext) -> dict[str, Any]:
    """The caller's resident record; refuses when the backend does not know the person."""
    if ctx.resident is None:
        ctx.refuse("identity_unknown", "未查询到您的户籍信息。", "Your registration record was not found.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    if ctx.resident.get("status") != "active":
        ctx.refuse("identity_inactive", "该身份信息已注销，不能办理本业务。",
                   "This identity is no longer active, so this service is not available.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    return ctx.resident


def resident_by_fields(ctx: OpContext, number_field: str = "id_number", name_field: str = "name"
                       ) -> dict[str, Any]:
    """The resident named by typed ID number and name (items without a card read); refuses a mismatch."""
    number = field(ctx, number_field).upper() or (ctx.id_number or "")
    person = ctx.row("SELECT * FROM residents WHERE id_number = ?", number)
    if person is None or person["name"] != field(ctx, name_field) or person["status"] != "active":
        ctx.refuse("identity_mismatch", "身份证号码与姓名不一致或未登记。",
                   "The ID number and name do not match a registered person.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    return person


def require_payment(ctx: OpContext, amount_fen: int) -> str:
    """Check the order paying for this operation covers ``amount_fen`` for this item; its id.

    The server has already refused an unpaid or already used order (and marks it used once
    the operation succeeds); what only the operation knows is the amount it costs.
    """
    if not ctx.payment_order_id:
        ctx.refuse("payment_required", "本业务须先缴费。", "This service must be paid first.",
                   "请在本机扫码缴费后重试。", "Please pay by QR code at this kiosk and try again.")
    order = ctx.row("SELECT amount_fen, item_id FROM orders WHERE order_id = ?", ctx.payment_order_id)
    if order is None or order["item_id"] != ctx.item_id or int(order["amount_fen"]) != int(amount_fen):
        ctx.refuse("payment_amount_mismatch", "缴费金额与应缴金额不一致。",
                   "The amount paid does not match the amount due.",
                   "请联系工作人员办理退款后重新缴费。", "Ask the staff for a refund, then pay again.")
    return ctx.payment_order_id


def fen(amount_fen: int) -> str:
    """12345 → '123.45元'."""
    return f"{amount_fen / 100:.2f}元"


def open_case(ctx: OpContext, *, prefix: str, category: str, title_zh: str, title_en: str,
              status_zh: str = "已受理", status_en: str = "Accepted", handler_zh: str = "",
              due_days: int = 5, details: dict[str, Any] | None = None, id_number: str | None = None) -> dict[str, Any]:
    """Create a tracked case (application, report, complaint) and return its row."""
    number = ctx.new_reference(prefix)
    due = today(ctx) + timedelta(days=due_days)
    ctx.db.execute(
        "INSERT INTO cases (case_number, item_id, category, id_number, title_zh, title_en, status_zh, status_en,"
        " handler_zh, created_at, due_on, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (number, ctx.item_id, category, id_number if id_number is not None else (ctx.id_number or ""),
         title_zh, title_en, status_zh, status_en, handler_zh, ctx.now.isoformat(), due.isoformat(),
         json.dumps(details or {}, ensure_ascii=False)))
    return ctx.row("SELECT * FROM cases WHERE case_number = ?", number) or {}


def pending_case(ctx: OpContext, item_ids: tuple[str, ...], id_number: str | None = None) -> dict[str, Any] | None:
    """An open case of these items for the person, if any."""
    marks = ",".join("?" * len(item_ids))
    return ctx.row(f"SELECT * FROM cases WHERE id_number = ? AND item_id IN ({marks}) AND closed = 0"
                   " ORDER BY created_at DESC", id_number or ctx.id_number or "", *item_ids)


def case_lines(case: dict[str, Any]) -> list[dict[str, str]]:
    """The display lines of a new case's slip."""
    return [line("受理编号", "Tracking number", case["case_number"]),
            line("办理状态", "Status", both(case["status_zh"], case["status_en"])),
            line("预计办结", "Expected by", case["due_on"])]


def book_slot(ctx: OpContext, service: str, slot_id: str, *, details: dict[str, Any] | None = None,
              one_per: str | None = None) -> dict[str, Any]:
    """Book one place in a free future slot of ``service``; the appointment row (refuses full/unknown)."""
    slot = ctx.row("SELECT * FROM appointment_slots WHERE slot_id = ?", slot_id)
    if slot is None or slot["service"] != service:
        ctx.refuse("slot_unknown", "所选时段不存在，请重新选择。", "That time slot does not exist; choose another.")
    if slot["starts_at"] <= ctx.now.strftime("%Y-%m-%dT%H:%M"):
        ctx.refuse("slot_past", "所选时段已过，请重新选择。", "That time slot has passed; choose another.")
    if slot["booked"] >= slot["capacity"]:
        ctx.refuse("slot_full", "所选时段已约满，请选择其他时段。", "That time slot is full; choose another.")
    key = one_per or service
    existing = ctx.row("SELECT appointment_number, starts_at FROM appointments a JOIN appointment_slots s"
                       " USING (slot_id) WHERE a.id_number = ? AND a.one_per = ? AND a.status = 'booked'"
                       " AND s.starts_at > ?", ctx.id_number or "", key, ctx.now.strftime("%Y-%m-%dT%H:%M"))
    if existing is not None:
        ctx.refuse("appointment_exists",
                   f"您已有该业务的预约（{existing['starts_at'].replace('T', ' ')}），请按时前往或先取消。",
                   f"You already have an appointment for this service ({existing['starts_at'].replace('T', ' ')}).")
    ctx.db.execute("UPDATE appointment_slots SET booked = booked + 1 WHERE slot_id = ?", (slot_id,))
    number = ctx.new_reference("YY")
    ctx.db.execute("INSERT INTO appointments (appointment_number, slot_id, item_id, id_number, one_per, status,"
                   " created_at, details) VALUES (?, ?, ?, ?, ?, 'booked', ?, ?)",
                   (number, slot_id, ctx.item_id, ctx.id_number or "", key, ctx.now.isoformat(),
                    json.dumps(details or {}, ensure_ascii=False)))
    appt = ctx.row("SELECT * FROM appointments WHERE appointment_number = ?", number) or {}
    appt.update(starts_at=slot["starts_at"], ends_at=slot["ends_at"], place_zh=slot["place_zh"],
                place_en=slot["place_en"])
    return appt


def appointment_lines(appt: dict[str, Any]) -> list[dict[str, str]]:
    """The display lines of a booked appointment's slip."""
    day, start = appt["starts_at"].split("T")
    return [line("预约号", "Appointment number", appt["appointment_number"]),
            line("预约时间", "Time", f"{day} {start}-{appt['ends_at'].split('T')[1]}"),
            line("办理地点", "Place", both(appt["place_zh"], appt["place_en"]))]


def age_on(birth: date, day: date) -> int:
    """Whole years of age on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def birth_from_id(id_number: str) -> date:
    """The birth date encoded in an 18-character ID number."""
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
