"""General items (G01-G05) and the records several categories share: cases and appointment slots.

Tables: ``cases`` (every application, report and complaint with its tracking number, read
back by the progress queries), ``appointment_slots`` / ``appointments`` (per service, seeded
for the next working days relative to the seeding day), ``community_officers``,
``ratings`` (G05; :func:`rating_summary` feeds the operators' statistics) and
``guide_views`` (how often each guide is read).
"""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

from kiosk.backend_sim.db import now
from kiosk.backend_sim.operations._common import (
    appointment_lines, book_slot, both, field, line, need_resident, open_case)
from kiosk.backend_sim.registry import OpContext, lookup, operation

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_number TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    category TEXT NOT NULL,          -- id_card, household, transfer, complaint, request, exit_entry, licence ...
    id_number TEXT NOT NULL,
    title_zh TEXT NOT NULL,
    title_en TEXT NOT NULL,
    status_zh TEXT NOT NULL,
    status_en TEXT NOT NULL,
    handler_zh TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    due_on TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    reply_zh TEXT NOT NULL DEFAULT '',
    reply_en TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS cases_by_person ON cases (id_number, item_id);
CREATE TABLE IF NOT EXISTS appointment_slots (
    slot_id TEXT PRIMARY KEY,
    service TEXT NOT NULL,           -- the item id that books it
    starts_at TEXT NOT NULL,         -- YYYY-MM-DDTHH:MM, Beijing time
    ends_at TEXT NOT NULL,
    place_zh TEXT NOT NULL,
    place_en TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    booked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS appointments (
    appointment_number TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL REFERENCES appointment_slots(slot_id),
    item_id TEXT NOT NULL,
    id_number TEXT NOT NULL,
    one_per TEXT NOT NULL,           -- at most one open booking per person and value
    status TEXT NOT NULL,            -- booked, cancelled, attended
    created_at TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS community_officers (
    district TEXT PRIMARY KEY,
    community_zh TEXT NOT NULL,
    officer_name TEXT NOT NULL,
    police_number TEXT NOT NULL,
    station_zh TEXT NOT NULL,
    duty_phone TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    rating_id INTEGER PRIMARY KEY AUTOINCREMENT,
    rating TEXT NOT NULL,            -- satisfied, basically_satisfied, dissatisfied
    rated_item TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    rated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS guide_views (
    item_id TEXT NOT NULL,
    day TEXT NOT NULL,
    views INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, day)
);
"""

# service (item id) -> (place zh, place en, capacity per half hour)
SLOT_SERVICES: dict[str, tuple[str, str, int]] = {
    "H10": ("泉城路派出所户籍窗口", "Quanchenglu police station, household counter", 3),
    "S10": ("泉城路派出所人民调解室", "Quanchenglu police station, mediation room", 1),
    "T13": ("济南市车管所号牌发放窗口", "Jinan vehicle office, plate counter", 4),
    "E09": ("济南市出入境管理大厅领证窗口", "Jinan exit-entry hall, collection counter", 4),
    "G01": ("泉城路派出所综合服务窗口", "Quanchenglu police station, service counter", 2),
}
SLOT_TIMES = ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30")
FULL_SLOT_TIME = "16:30"  # the last slot of the first working day is seeded fully booked
WEEKDAY_ZH = "一二三四五六日"
RATINGS = {"satisfied": ("满意", "Satisfied"), "basically_satisfied": ("基本满意", "Basically satisfied"),
           "dissatisfied": ("不满意", "Dissatisfied")}
OFFICERS = (
    ("历下区", "泉城路社区", "赵文博", "370102-1024", "济南市公安局历下分局泉城路派出所", "0531-86081110"),
    ("市中区", "经七路社区", "孟庆华", "370103-2045", "济南市公安局市中分局经七路派出所", "0531-86052110"),
    ("槐荫区", "道德街社区", "高建军", "370104-3012", "济南市公安局槐荫分局道德街派出所", "0531-87589110"),
    ("历城区", "花园路社区", "许立新", "370112-4088", "济南市公安局历城分局花园路派出所", "0531-88115110"),
)


def working_days(start: date, count: int) -> list[date]:
    """The next ``count`` Monday-to-Friday days after ``start``."""
    days, day = [], start
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def seed(conn: sqlite3.Connection) -> None:
    """Slots for the next ten working days, community officers, a few past ratings."""
    t0 = now()
    rows = []
    for i, day in enumerate(working_days(t0.date(), 10)):
        for hhmm in SLOT_TIMES:
            start = datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time())
            end = start + timedelta(minutes=30)
            for service, (place_zh, place_en, capacity) in SLOT_SERVICES.items():
                booked = capacity if (i == 0 and hhmm == FULL_SLOT_TIME) else 0
                rows.append((f"{service}-{day:%Y%m%d}-{hhmm.replace(':', '')}", service,
                             start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M"),
                             place_zh, place_en, capacity, booked))
    conn.executemany("INSERT INTO appointment_slots VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO community_officers VALUES (?, ?, ?, ?, ?, ?)", OFFICERS)
    past = (t0 - timedelta(days=3)).isoformat()
    conn.executemany("INSERT INTO ratings (rating, rated_item, reason, rated_at) VALUES (?, ?, ?, ?)",
                     [("satisfied", "H01", "", past), ("satisfied", "S01", "", past),
                      ("basically_satisfied", "T02", "排队打印稍慢", past)])


# --- shared lookup ----------------------------------------------------------------------------
@lookup("appointment_slots")
def appointment_slots(ctx: OpContext) -> list[dict[str, Any]]:
    """Free future slots of the asking item's service, soonest first."""
    rows = ctx.rows("SELECT * FROM appointment_slots WHERE service = ? AND booked < capacity AND starts_at > ?"
                    " ORDER BY starts_at LIMIT 40", ctx.item_id, ctx.now.strftime("%Y-%m-%dT%H:%M"))
    options = []
    for r in rows:
        day, start = r["starts_at"].split("T")
        end = r["ends_at"].split("T")[1]
        weekday = date.fromisoformat(day).weekday()
        left = r["capacity"] - r["booked"]
        options.append({"value": r["slot_id"],
                        "label_zh": f"{day} 周{WEEKDAY_ZH[weekday]} {start}-{end}（余{left}）",
                        "label_en": f"{date.fromisoformat(day):%a} {day} {start}-{end} ({left} left)",
                        "detail": r["place_zh"]})
    return options


# --- G01 ---------------------------------------------------------------------------------------
@operation("counter_appointment")
def counter_appointment(ctx: OpContext) -> dict[str, Any]:
    """G01: book the police station counter for one service (one open booking per service)."""
    need_resident(ctx)
    service = field(ctx, "service")
    appt = book_slot(ctx, "G01", field(ctx, "slot"), details={"service": service}, one_per=f"G01:{service}")
    return {"reference": appt["appointment_number"], "display": appointment_lines(appt),
            "data": {"appointment_number": appt["appointment_number"], "slot_id": appt["slot_id"],
                     "starts_at": appt["starts_at"], "service": service}}


# --- G02, G03 (and S17 through public_order) ----------------------------------------------------
def count_guide_view(ctx: OpContext) -> int:
    """Count one reading of this guide today; today's total."""
    day = ctx.now.date().isoformat()
    ctx.db.execute("INSERT INTO guide_views (item_id, day, views) VALUES (?, ?, 1)"
                   " ON CONFLICT(item_id, day) DO UPDATE SET views = views + 1", (ctx.item_id, day))
    row = ctx.row("SELECT views FROM guide_views WHERE item_id = ? AND day = ?", ctx.item_id, day)
    return int(row["views"]) if row else 1


@operation("service_guides")
def service_guides(ctx: OpContext) -> dict[str, Any]:
    """G02: the guide text is catalog data; the backend counts the reading."""
    views = count_guide_view(ctx)
    return {"display": [line("今日阅读", "Read today", views)], "data": {"views_today": views}}


@operation("household_questions")
def household_questions(ctx: OpContext) -> dict[str, Any]:
    """G03: the questions are catalog data; the backend counts the reading."""
    views = count_guide_view(ctx)
    return {"display": [line("今日阅读", "Read today", views)], "data": {"views_today": views}}


# --- G04 ---------------------------------------------------------------------------------------
@operation("community_officer_contact")
def community_officer_contact(ctx: OpContext) -> dict[str, Any]:
    """G04: find the officer for the resident's living district and leave the message for them."""
    person = need_resident(ctx)
    district = next((d for d, *_ in OFFICERS if d in person["living_address"]), None)
    officer = ctx.row("SELECT * FROM community_officers WHERE district = ?", district) if district else None
    if officer is None:
        ctx.refuse("no_community_officer", "您的居住地址不在本市辖区内，无法转交社区民警。",
                   "Your address is outside the districts served here, so no community officer can be found.",
                   "请拨打居住地派出所电话或110。", "Call the police station where you live, or 110.")
    case = open_case(ctx, prefix="MJ", category="officer_message", title_zh="社区民警留言",
                     title_en="Message to the community officer", status_zh="已推送民警",
                     status_en="Sent to the officer", handler_zh=officer["station_zh"], due_days=1,
                     details={"topic": field(ctx, "topic"), "callback": field(ctx, "callback"),
                              "officer": officer["police_number"]})
    return {"reference": case["case_number"],
            "display": [line("留言编号", "Message number", case["case_number"]),
                        line("社区民警", "Community officer", f"{officer['officer_name']}（警号 {officer['police_number']}）"),
                        line("所属社区", "Community", officer["community_zh"]),
                        line("所属派出所", "Police station", officer["station_zh"]),
                        line("值班电话", "Duty phone", officer["duty_phone"])],
            "data": {"case_number": case["case_number"], "police_number": officer["police_number"],
                     "station": officer["station_zh"]}}


# --- G05 ---------------------------------------------------------------------------------------
def rating_summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts per rating and the satisfaction rate (satisfied + basically satisfied) for the statistics."""
    counts = {k: 0 for k in RATINGS}
    for r in conn.execute("SELECT rating, COUNT(*) FROM ratings GROUP BY rating"):
        counts[r[0]] = int(r[1])
    total = sum(counts.values())
    rate = (counts["satisfied"] + counts["basically_satisfied"]) / total if total else None
    return {"counts": counts, "total": total, "satisfaction_rate": rate}


@operation("satisfaction_rating")
def satisfaction_rating(ctx: OpContext) -> dict[str, Any]:
    """G05: store a rating (anonymous: no ID number kept) and answer with the running totals."""
    rating = field(ctx, "rating")
    if rating not in RATINGS:
        ctx.refuse("rating_invalid", "请选择满意、基本满意或不满意。",
                   "Please choose satisfied, basically satisfied or dissatisfied.")
    ctx.db.execute("INSERT INTO ratings (rating, rated_item, reason, rated_at) VALUES (?, ?, ?, ?)",
                   (rating, field(ctx, "rated_item"), field(ctx, "reason")[:200], ctx.now.isoformat()))
    summary = rating_summary(ctx.db)
    zh, en = RATINGS[rating]
    display = [line("您的评价", "Your rating", both(zh, en)),
               line("累计评价", "Ratings so far", summary["total"])]
    if summary["satisfaction_rate"] is not None:
        display.append(line("满意率", "Satisfaction rate", f"{summary['satisfaction_rate'] * 100:.1f}%"))
    return {"display": display, "data": {"rating": rating, **summary}}
