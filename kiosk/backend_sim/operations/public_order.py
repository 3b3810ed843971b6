"""Public order and community items (S01-S17): no-criminal-record certificate, verification,
dogs, e-bikes, rentals, foreign guests, mediation, lost and found, reports and complaints.

Own tables: ``dogs``, ``ebike_products`` (what the manufacturers' catalogue and the
dealers' sales say), ``ebikes``, ``properties``, ``leases``, ``foreign_visitors``,
``foreign_stays``, ``lost_items``. Reports and complaints are ``cases`` (general.py).
The criminal record and case-under-review flags are the core residents table's.
"""
from __future__ import annotations

import re
import sqlite3
from datetime import date, timedelta
from typing import Any

from kiosk.backend_sim.db import now
from kiosk.backend_sim.operations._common import (
    SEX_ZH, WHERE_STATION_EN, WHERE_STATION_ZH, add_months, appointment_lines, book_slot, both, case_lines, field,
    line, need_resident, open_case, today)
from kiosk.backend_sim.operations.general import count_guide_view
from kiosk.backend_sim.registry import OpContext, lookup, operation
from kiosk.backend_sim.seed import LI_XIUYING, LIU_FANG, SUN_LI, WANG_XIAOMING

SCHEMA = """
CREATE TABLE IF NOT EXISTS dogs (
    tag_number TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    name TEXT NOT NULL,
    breed TEXT NOT NULL,
    color TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    inspected_until TEXT NOT NULL,
    vaccinated_on TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS ebike_products (
    frame_number TEXT PRIMARY KEY,
    brand TEXT NOT NULL,
    model TEXT NOT NULL,
    compliant INTEGER NOT NULL,        -- listed under GB 17761-2018
    invoice_number TEXT NOT NULL,
    sold_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ebikes (
    plate TEXT PRIMARY KEY,
    frame_number TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL,
    color TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    status TEXT NOT NULL,             -- normal, stolen
    stolen_case TEXT
);
CREATE TABLE IF NOT EXISTS properties (
    cert_number TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    address TEXT NOT NULL,
    area_m2 REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    contract_number TEXT PRIMARY KEY,
    cert_number TEXT NOT NULL REFERENCES properties(cert_number),
    landlord_id TEXT NOT NULL,
    tenant_id_number TEXT NOT NULL,
    address TEXT NOT NULL,
    lease_start TEXT NOT NULL,
    lease_end TEXT NOT NULL,
    monthly_rent_fen INTEGER NOT NULL,
    registered_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS foreign_visitors (
    passport_number TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    nationality TEXT NOT NULL,
    sex TEXT NOT NULL,
    visa_type TEXT NOT NULL,
    entry_date TEXT NOT NULL,
    entry_port TEXT NOT NULL,
    stay_until TEXT NOT NULL          -- the last day the visa or entry allows
);
CREATE TABLE IF NOT EXISTS foreign_stays (
    registration_number TEXT PRIMARY KEY,
    passport_number TEXT NOT NULL,
    stay_from TEXT NOT NULL,
    stay_to TEXT NOT NULL,
    host_address TEXT NOT NULL,
    host_name TEXT NOT NULL,
    host_phone TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lost_items (
    item_number TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    description_zh TEXT NOT NULL,
    description_en TEXT NOT NULL,
    found_on TEXT NOT NULL,
    found_place TEXT NOT NULL,
    held_by TEXT NOT NULL,
    claimed INTEGER NOT NULL DEFAULT 0
);
"""

BANNED_BREEDS = {"tibetan_mastiff": "藏獒", "pit_bull": "比特犬", "dogo_argentino": "杜高犬"}
BREEDS_ZH = {"poodle": "贵宾犬", "corgi": "柯基犬", "shiba": "柴犬", "bichon": "比熊犬", "pomeranian": "博美犬",
             "chinese_rural": "中华田园犬", "golden": "金毛寻回犬", **BANNED_BREEDS}
# Products in the catalogue; frame numbers the tests and the demo type in.
FRAME_NEW = "YD2024A0012345"      # compliant, sold to nobody registered yet: S05 happy path
FRAME_OLD = "XJ2016B0098765"      # pre-2019 standard: refused
FRAME_REGISTERED = "AM2023C0045678"
PROPERTY_LEASED = "鲁(2019)济南市不动产权第0012345号"
PROPERTY_FREE = "鲁(2021)济南市不动产权第0067890号"
LEASE_LIU_FANG = "ZL202401050001"
PASSPORT_SMITH = "533401987"
DOG_TAG_LI = "JNQ202300128"
COLOR_ZH = {"white": "白", "black": "黑", "red": "红", "blue": "蓝", "grey": "灰", "other": "其他"}
STATIONS = {"历下区": "泉城路派出所", "市中区": "经七路派出所", "槐荫区": "道德街派出所", "历城区": "花园路派出所",
            "天桥区": "北园派出所"}
CRIMINAL_WHERE_ZH = "户籍地派出所（携带身份证，工作日窗口办理，需人工核查）"
CRIMINAL_WHERE_EN = "your household police station (bring your ID card; staff check it on working days)"


def seed(conn: sqlite3.Connection) -> None:
    """Dogs, e-bike catalogue and bikes, properties and 刘芳's lease, a foreign guest, found items."""
    t = now().date()
    hh = {r[0]: r[1] for r in conn.execute("SELECT id_number, household_id FROM residents")}
    conn.execute("INSERT INTO dogs VALUES (?, ?, ?, '豆豆', 'poodle', '棕', '2021-04-02', '2023-05-10', ?, ?, 1)",
                 (DOG_TAG_LI, LI_XIUYING, hh[LI_XIUYING], (t + timedelta(days=20)).isoformat(),
                  (t - timedelta(days=60)).isoformat()))
    conn.executemany("INSERT INTO ebike_products VALUES (?, ?, ?, ?, ?, ?)", [
        (FRAME_NEW, "雅迪", "DE2 新国标", 1, "24370000123456", (t - timedelta(days=3)).isoformat()),
        ("TL2024D0033221", "台铃", "超能G8", 1, "24370000654321", (t - timedelta(days=1)).isoformat()),
        (FRAME_OLD, "小刀", "XD-60 老款", 0, "16370000111111", "2016-07-01"),
        (FRAME_REGISTERED, "爱玛", "A500", 1, "23370000222222", "2023-04-01"),
        ("NJ2023E0011122", "九号", "C40", 1, "23370000333333", "2023-08-15"),
        ("YD2023F0077889", "雅迪", "冠能Q5", 1, "23370000444444", "2023-09-01"),
    ])
    conn.executemany("INSERT INTO ebikes VALUES (?, ?, ?, ?, ?, 'normal', NULL)", [
        ("济南A00017", FRAME_REGISTERED, WANG_XIAOMING, "white", "2023-04-03"),
        ("济南A00018", "NJ2023E0011122", WANG_XIAOMING, "black", "2023-08-20"),
        ("济南A00021", "YD2023F0077889", SUN_LI, "red", "2023-09-05"),
    ])
    conn.executemany("INSERT INTO properties VALUES (?, ?, ?, ?)", [
        (PROPERTY_LEASED, WANG_XIAOMING, "山东省济南市历下区文化东路50号2单元301室", 89.5),
        (PROPERTY_FREE, WANG_XIAOMING, "山东省济南市历下区山大路120号5号楼1单元402室", 72.3),
    ])
    conn.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, 260000, ?)",
                 (LEASE_LIU_FANG, PROPERTY_LEASED, WANG_XIAOMING, LIU_FANG,
                  "山东省济南市历下区文化东路50号2单元301室", add_months(t, -14).isoformat(),
                  add_months(t, 10).isoformat(), add_months(t, -14).isoformat()))
    conn.execute("INSERT INTO foreign_visitors VALUES (?, 'SMITH, JOHN', 'GBR', 'male', 'L', ?, '济南遥墙国际机场', ?)",
                 (PASSPORT_SMITH, t.isoformat(), (t + timedelta(days=30)).isoformat()))
    found = [
        ("SW0001", "documents", "居民身份证一张（姓名王某某）", "A resident ID card (surname Wang)", 5, "泉城广场西侧", "泉城路派出所"),
        ("SW0002", "wallet", "黑色男士钱包，内有银行卡", "Black men's wallet with bank cards", 3, "芙蓉街", "泉城路派出所"),
        ("SW0003", "phone", "白色华为手机", "White Huawei phone", 2, "大明湖南门", "大明湖派出所"),
        ("SW0004", "keys", "钥匙一串（4把，蓝色挂件）", "A bunch of 4 keys with a blue charm", 9, "经七路公交站", "经七路派出所"),
        ("SW0005", "bag", "红色双肩包，内有课本", "Red backpack with school books", 1, "济南站南广场", "济南站派出所"),
        ("SW0006", "phone", "黑色苹果手机，屏幕碎裂", "Black iPhone, cracked screen", 20, "趵突泉公园", "泉城路派出所"),
    ]
    conn.executemany("INSERT INTO lost_items VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                     [(n, c, zh, en, (t - timedelta(days=d)).isoformat(), p, s) for n, c, zh, en, d, p, s in found])
    # A complaint answered last week and a request still open (S16).
    conn.execute("INSERT INTO cases (case_number, item_id, category, id_number, title_zh, title_en, status_zh,"
                 " status_en, handler_zh, created_at, due_on, closed, reply_zh, reply_en) VALUES"
                 " ('S1320241101000001', 'S13', 'complaint', ?, '噪音扰民投诉', 'Noise complaint', '已办结',"
                 " 'Closed', '泉城路派出所', ?, ?, 1, '民警已上门劝导，装修时间已调整至8:00-12:00、14:00-18:00。',"
                 " 'An officer visited; renovation now keeps to 8:00-12:00 and 14:00-18:00.')",
                 (WANG_XIAOMING, (t - timedelta(days=9)).isoformat(), (t - timedelta(days=6)).isoformat()))


# --- S01, S02 ----------------------------------------------------------------------------------
@operation("no_criminal_record_certificate")
def no_criminal_record_certificate(ctx: OpContext) -> dict[str, Any]:
    """S01: printed at once for a clean record; a record or a case under review is refused (backend decides)."""
    person = need_resident(ctx)
    if person["criminal_record"]:
        ctx.refuse("criminal_record_found", "系统核查发现您有违法犯罪记录，不能自助开具无犯罪记录证明。",
                   "The check found a record, so this certificate cannot be issued at the kiosk.",
                   CRIMINAL_WHERE_ZH, CRIMINAL_WHERE_EN)
    if person["case_under_review"]:
        ctx.refuse("case_under_review", "您有正在核查中的案件，结案前不能开具无犯罪记录证明。",
                   "A case concerning you is under review; the certificate cannot be issued until it closes.",
                   CRIMINAL_WHERE_ZH, CRIMINAL_WHERE_EN)
    household = ctx.row("SELECT police_station FROM households WHERE household_id = ?", person["household_id"]) or {}
    purposes = {"employment": "就业", "study_abroad": "出国（境）留学", "emigration": "出国（境）定居、工作",
                "visa": "签证申请", "military": "参军入伍", "adoption": "收养子女", "qualification": "职业资格、执业许可",
                "driving_school": "网约车、驾校教练等从业"}
    purpose = purposes.get(field(ctx, "purpose"), "其他")
    day = today(ctx)
    content = {"name": person["name"], "sex": SEX_ZH.get(person["sex"], person["sex"]),
               "id_number": person["id_number"], "birth_date": person["birth_date"], "address": person["address"],
               "purpose": purpose, "checked_until": day.isoformat(),
               "issuer": household.get("police_station", "济南市公安局"),
               "statement": f"经查询全国违法犯罪人员信息资源库，截至{day.year}年{day.month}月{day.day}日，"
                            f"未发现{person['name']}（公民身份号码：{person['id_number']}）有犯罪记录。",
               "note": "本证明仅证明截至出具之日的情况，用于" + purpose + "。",
               "valid_until": add_months(day, 3).isoformat()}
    doc = ctx.issue_document("no_criminal_record_certificate", "无犯罪记录证明", "No-criminal-record certificate",
                             content)
    return {"document": doc,
            "display": [line("核查结果", "Result", both("未发现犯罪记录", "no record found")),
                        line("证明用途", "Purpose", purpose), line("验证码", "Verification code",
                                                                doc["verification_code"])],
            "data": {"document_id": doc["document_id"], "verification_code": doc["verification_code"]}}


def _normalise_code(code: str) -> str:
    raw = re.sub(r"[^0-9A-Za-z]", "", code).upper()
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


@operation("certificate_verification")
def certificate_verification(ctx: OpContext) -> dict[str, Any]:
    """S02: is a typed verification code one of our issued documents? (the QR path is POST /verify)."""
    code = _normalise_code(field(ctx, "verification_code"))
    doc = ctx.row("SELECT doc_type, title_zh, title_en, issued_at, holder_masked, item_id FROM documents"
                  " WHERE verification_code = ?", code)
    if doc is None:
        return {"display": [line("核验结果", "Result", both("未找到该证明，可能为伪造", "not found: possibly forged")),
                            line("验证码", "Verification code", code)],
                "data": {"valid": False, "verification_code": code}}
    return {"display": [line("核验结果", "Result", both("真实有效", "genuine")),
                        line("证明名称", "Document", both(doc["title_zh"], doc["title_en"])),
                        line("持证人", "Holder", doc["holder_masked"]),
                        line("出具时间", "Issued at", doc["issued_at"])],
            "data": {"valid": True, "verification_code": code, "doc_type": doc["doc_type"],
                     "issued_at": doc["issued_at"]}}


# --- S03, S04: dogs ----------------------------------------------------------------------------
@operation("dog_registration")
def dog_registration(ctx: OpContext) -> dict[str, Any]:
    """S03: one dog per household in the key area; banned breeds refused; a tag number issued."""
    person = need_resident(ctx)
    breed = field(ctx, "breed")
    if breed in BANNED_BREEDS:
        ctx.refuse("dog_breed_banned", f"{BANNED_BREEDS[breed]}属于重点管理区禁养犬种，不能登记。",
                   "This breed is banned in the key management area and cannot be registered.",
                   "如有疑问请咨询居住地派出所", "ask your local police station if in doubt")
    existing = ctx.row("SELECT tag_number FROM dogs WHERE household_id = ? AND active = 1", person["household_id"])
    if existing is not None:
        ctx.refuse("dog_limit_reached", "重点管理区内每户限养一只犬，您家已登记犬只。",
                   "One dog per household in the key management area, and your household already has one.")
    tag = ctx.new_reference("JNQ")
    t = today(ctx)
    ctx.db.execute("INSERT INTO dogs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                   (tag, person["id_number"], person["household_id"], field(ctx, "dog_name"), breed, field(ctx, "color"),
                    field(ctx, "dog_birth_date"), t.isoformat(), add_months(t, 12).isoformat(), t.isoformat()))
    return {"reference": tag,
            "display": [line("犬牌号", "Dog tag number", tag), line("犬名", "Dog", field(ctx, "dog_name")),
                        line("犬种", "Breed", BREEDS_ZH.get(breed, breed)),
                        line("年检有效期至", "Inspection valid until", add_months(t, 12).isoformat()),
                        line("植入芯片期限", "Chip implant by", (t + timedelta(days=7)).isoformat())],
            "data": {"tag_number": tag}}


@lookup("my_dogs")
def my_dogs(ctx: OpContext) -> list[dict[str, Any]]:
    """The resident's registered dogs."""
    return [{"value": d["tag_number"],
             "label_zh": f"{d['name']}（{BREEDS_ZH.get(d['breed'], d['breed'])}，犬牌{d['tag_number']}）",
             "label_en": f"{d['name']} (tag {d['tag_number']})", "detail": f"年检至{d['inspected_until']}"}
            for d in ctx.rows("SELECT * FROM dogs WHERE owner_id = ? AND active = 1", ctx.id_number or "")]


@operation("dog_annual_inspection")
def dog_annual_inspection(ctx: OpContext) -> dict[str, Any]:
    """S04: a rabies vaccination within the last year extends the registration by a year."""
    person = need_resident(ctx)
    dog = ctx.row("SELECT * FROM dogs WHERE tag_number = ? AND owner_id = ? AND active = 1", field(ctx, "dog"),
                  person["id_number"])
    if dog is None:
        ctx.refuse("dog_not_found", "未查询到您名下的该犬只。", "No such dog is registered to you.")
    vaccinated = date.fromisoformat(field(ctx, "vaccination_date") or "1900-01-01")
    if vaccinated < add_months(today(ctx), -12):
        ctx.refuse("vaccine_expired", "狂犬病免疫已超过一年，请先为犬只接种狂犬疫苗。",
                   "The rabies vaccination is more than a year old; vaccinate the dog first.",
                   "就近的犬类免疫点", "a nearby dog vaccination point")
    until = add_months(max(date.fromisoformat(dog["inspected_until"]), today(ctx)), 12).isoformat()
    ctx.db.execute("UPDATE dogs SET inspected_until = ?, vaccinated_on = ? WHERE tag_number = ?",
                   (until, vaccinated.isoformat(), dog["tag_number"]))
    return {"display": [line("犬牌号", "Dog tag number", dog["tag_number"]), line("犬名", "Dog", dog["name"]),
                        line("年检有效期至", "Inspection valid until", until)],
            "data": {"tag_number": dog["tag_number"], "inspected_until": until}}


# --- S05-S07: e-bikes --------------------------------------------------------------------------
@operation("ebike_registration")
def ebike_registration(ctx: OpContext) -> dict[str, Any]:
    """S05: a catalogue-listed, compliant e-bike with a matching invoice gets its plate."""
    person = need_resident(ctx)
    frame = field(ctx, "frame_number").upper()
    product = ctx.row("SELECT * FROM ebike_products WHERE frame_number = ?", frame)
    if product is None:
        ctx.refuse("ebike_not_in_catalog", "该车架号不在电动自行车产品目录中。",
                   "This frame number is not in the e-bike product catalogue.",
                   "请核对车架号，或携带合格证到电动自行车登记服务站", "check it, or bring the certificate to an e-bike service point")
    if not product["compliant"]:
        ctx.refuse("ebike_not_compliant", "该车型不符合《电动自行车安全技术规范》（GB 17761-2018），不能登记挂牌。",
                   "This model does not meet GB 17761-2018 and cannot be registered.")
    if product["invoice_number"] != field(ctx, "invoice_number"):
        ctx.refuse("invoice_mismatch", "发票号码与该车的销售记录不一致。",
                   "The invoice number does not match this bike's sale record.")
    if ctx.row("SELECT 1 FROM ebikes WHERE frame_number = ?", frame):
        ctx.refuse("ebike_already_registered", "该车已登记挂牌。", "This e-bike is already registered.")
    seq = ctx.db.execute("INSERT INTO sequences(prefix, value) VALUES ('EBIKE', 100) ON CONFLICT(prefix)"
                         " DO UPDATE SET value = value + 1 RETURNING value").fetchone()[0]
    plate = f"济南A{seq:05d}"
    ctx.db.execute("INSERT INTO ebikes VALUES (?, ?, ?, ?, ?, 'normal', NULL)",
                   (plate, frame, person["id_number"], field(ctx, "color"), today(ctx).isoformat()))
    return {"reference": plate,
            "display": [line("号牌号码", "Plate number", plate),
                        line("品牌型号", "Make and model", f"{product['brand']} {product['model']}"),
                        line("车身颜色", "Colour", COLOR_ZH.get(field(ctx, "color"), field(ctx, "color"))),
                        line("领牌地点", "Collect the plate at", "历下区电动自行车登记服务站（解放路88号）")],
            "data": {"plate": plate, "frame_number": frame}}


@lookup("my_ebikes")
def my_ebikes(ctx: OpContext) -> list[dict[str, Any]]:
    """The resident's registered e-bikes."""
    rows = ctx.rows("SELECT b.*, p.brand, p.model FROM ebikes b JOIN ebike_products p USING (frame_number)"
                    " WHERE b.owner_id = ? ORDER BY b.plate", ctx.id_number or "")
    return [{"value": r["plate"],
             "label_zh": f"{r['plate']} {r['brand']}{r['model']}" + ("（被盗）" if r["status"] == "stolen" else ""),
             "label_en": f"{r['plate']} {r['model']}" + (" (stolen)" if r["status"] == "stolen" else "")} for r in rows]


def _own_ebike(ctx: OpContext, person: dict[str, Any]) -> dict[str, Any]:
    bike = ctx.row("SELECT * FROM ebikes WHERE plate = ? AND owner_id = ?", field(ctx, "ebike_plate"),
                   person["id_number"])
    if bike is None:
        ctx.refuse("ebike_not_owned", "该号牌的电动自行车不在您名下。", "No e-bike with this plate is registered to you.")
    return bike


@operation("ebike_transfer")
def ebike_transfer(ctx: OpContext) -> dict[str, Any]:
    """S06: transfer to a registered person; a bike reported stolen cannot change hands."""
    person = need_resident(ctx)
    bike = _own_ebike(ctx, person)
    if bike["status"] == "stolen":
        ctx.refuse("ebike_reported_stolen", "该车处于被盗抢登记状态，不能过户。",
                   "This bike is registered as stolen and cannot be transferred.",
                   WHERE_STATION_ZH, WHERE_STATION_EN)
    new_id = field(ctx, "new_owner_id_number").upper()
    if new_id == person["id_number"]:
        ctx.refuse("same_owner", "新车主不能是本人。", "The new owner cannot be yourself.")
    new_owner = ctx.row("SELECT name FROM residents WHERE id_number = ? AND status = 'active'", new_id)
    if new_owner is None or new_owner["name"] != field(ctx, "new_owner_name"):
        ctx.refuse("new_owner_unknown", "新车主姓名与身份证号码不一致或未登记。",
                   "The new owner's name and ID number do not match a registered person.")
    ctx.db.execute("UPDATE ebikes SET owner_id = ? WHERE plate = ?", (new_id, bike["plate"]))
    number = ctx.new_reference("GH")
    return {"reference": number,
            "display": [line("过户编号", "Transfer number", number), line("号牌号码", "Plate number", bike["plate"]),
                        line("新车主", "New owner", new_owner["name"])],
            "data": {"plate": bike["plate"], "transfer_number": number}}


@operation("ebike_theft_report")
def ebike_theft_report(ctx: OpContext) -> dict[str, Any]:
    """S07: list the bike as stolen and open a theft case."""
    person = need_resident(ctx)
    bike = _own_ebike(ctx, person)
    if bike["status"] == "stolen":
        ctx.refuse("already_reported_stolen", f"该车已于此前报案（{bike['stolen_case']}）。",
                   f"This bike is already reported stolen ({bike['stolen_case']}).")
    station = next((s for d, s in STATIONS.items() if d in field(ctx, "place")), "泉城路派出所")
    case = open_case(ctx, prefix="BA", category="theft", title_zh="电动自行车被盗", title_en="E-bike theft",
                     status_zh="已立案侦查", status_en="Under investigation", handler_zh=station, due_days=30,
                     details={"plate": bike["plate"], "stolen_on": field(ctx, "stolen_on")})
    ctx.db.execute("UPDATE ebikes SET status = 'stolen', stolen_case = ? WHERE plate = ?",
                   (case["case_number"], bike["plate"]))
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("号牌号码", "Plate number", bike["plate"]),
                                           line("承办单位", "Handled by", station)],
            "data": {"case_number": case["case_number"], "plate": bike["plate"]}}


# --- S08, S09: rentals and foreign guests ------------------------------------------------------
@operation("rental_housing_registration")
def rental_housing_registration(ctx: OpContext) -> dict[str, Any]:
    """S08: the landlord registers a lease of an owned home; the contract number is issued."""
    person = need_resident(ctx)
    prop = ctx.row("SELECT * FROM properties WHERE cert_number = ?", field(ctx, "property_cert_number"))
    if prop is None or prop["owner_id"] != person["id_number"]:
        ctx.refuse("property_not_owned", "该不动产权证不在您名下，不能登记出租。",
                   "This property certificate is not in your name, so you cannot register it for rent.",
                   "委托出租的请携带委托书到居住地派出所", "agents bring the owner's authorisation to the local police station")
    tenant_id = field(ctx, "tenant_id_number").upper()
    tenant = ctx.row("SELECT name FROM residents WHERE id_number = ? AND status = 'active'", tenant_id)
    if tenant is None or tenant["name"] != field(ctx, "tenant_name"):
        ctx.refuse("tenant_identity_mismatch", "承租人姓名与身份证号码不一致或未登记。",
                   "The tenant's name and ID number do not match a registered person.")
    if tenant_id == person["id_number"]:
        ctx.refuse("tenant_is_landlord", "承租人不能是房东本人。", "The tenant cannot be the landlord.")
    start, end = field(ctx, "lease_start"), field(ctx, "lease_end")
    if not start or not end or end <= start:
        ctx.refuse("lease_dates_invalid", "租期结束日期须晚于开始日期。", "The lease must end after it starts.")
    seq = ctx.db.execute("INSERT INTO sequences(prefix, value) VALUES ('ZL', 1) ON CONFLICT(prefix)"
                         " DO UPDATE SET value = value + 1 RETURNING value").fetchone()[0]
    contract = f"ZL{ctx.now:%Y%m%d}{seq:04d}"
    rent_fen = int(round(float(field(ctx, "monthly_rent") or 0) * 100))
    ctx.db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (contract, prop["cert_number"], person["id_number"], tenant_id, prop["address"], start, end,
                    rent_fen, today(ctx).isoformat()))
    return {"reference": contract,
            "display": [line("租赁合同编号", "Lease contract number", contract),
                        line("出租房屋", "Rented home", prop["address"]), line("承租人", "Tenant", tenant["name"]),
                        line("租期", "Lease", f"{start} — {end}")],
            "data": {"contract_number": contract}}


@operation("foreign_guest_registration")
def foreign_guest_registration(ctx: OpContext) -> dict[str, Any]:
    """S09: a foreign guest's stay, checked against the entry record and the allowed stay."""
    passport = (field(ctx, "passport_number") or ctx.id_number or "").upper()
    visitor = ctx.row("SELECT * FROM foreign_visitors WHERE passport_number = ?", passport)
    if visitor is None:
        ctx.refuse("no_entry_record", "未查询到该护照的入境记录，不能自助登记。",
                   "No entry record was found for this passport, so it cannot be registered here.",
                   "请到居住地派出所或" + "出入境管理大厅办理", "go to the local police station or the exit-entry hall")
    stay_from, stay_to = field(ctx, "stay_from"), field(ctx, "stay_to")
    if not stay_from or not stay_to or stay_to < stay_from:
        ctx.refuse("stay_dates_invalid", "离开日期须不早于入住日期。", "The stay must end on or after its first day.")
    if stay_to > visitor["stay_until"]:
        ctx.refuse("stay_exceeds_visa", f"住宿期限超过签证或停留期限（{visitor['stay_until']}）。",
                   f"The stay runs past the visa or permitted stay ({visitor['stay_until']}).",
                   "请先到出入境管理大厅办理签证延期", "extend the visa at the exit-entry hall first")
    number = ctx.new_reference("JW")
    ctx.db.execute("INSERT INTO foreign_stays VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (number, passport, stay_from, stay_to, field(ctx, "host_address"), field(ctx, "host_name"),
                    field(ctx, "host_phone"), ctx.now.isoformat()))
    return {"reference": number,
            "display": [line("登记编号", "Registration number", number),
                        line("国籍", "Nationality", visitor["nationality"]),
                        line("住宿期间", "Stay", f"{stay_from} — {stay_to}"),
                        line("住宿地址", "Address", field(ctx, "host_address")),
                        line("签证停留期至", "Permitted stay until", visitor["stay_until"])],
            "data": {"registration_number": number}}


# --- S10-S16 -----------------------------------------------------------------------------------
@operation("mediation_appointment")
def mediation_appointment(ctx: OpContext) -> dict[str, Any]:
    """S10: book the mediation room."""
    need_resident(ctx)
    appt = book_slot(ctx, "S10", field(ctx, "slot"), details={"dispute_type": field(ctx, "dispute_type")})
    return {"reference": appt["appointment_number"], "display": appointment_lines(appt),
            "data": {"appointment_number": appt["appointment_number"], "starts_at": appt["starts_at"]}}


@operation("lost_and_found_query")
def lost_and_found_query(ctx: OpContext) -> dict[str, Any]:
    """S11: unclaimed found items of a kind, found on or after the day lost, matching a keyword."""
    sql = "SELECT * FROM lost_items WHERE claimed = 0 AND category = ?"
    params: list[Any] = [field(ctx, "category")]
    if field(ctx, "lost_on"):
        sql += " AND found_on >= ?"
        params.append(field(ctx, "lost_on"))
    items = [r for r in ctx.rows(sql + " ORDER BY found_on DESC", *params)
             if not field(ctx, "keyword") or field(ctx, "keyword") in r["description_zh"]
             or field(ctx, "keyword").lower() in r["description_en"].lower()]
    display = [line("找到物品", "Items found", len(items))]
    for r in items:
        display += [line("物品", "Item", both(r["description_zh"], r["description_en"])),
                    line("拾得时间地点", "Found", f"{r['found_on']} {r['found_place']}"),
                    line("保管单位", "Held by", r["held_by"])]
    return {"display": display, "data": {"items": [r["item_number"] for r in items]}}


def _report(ctx: OpContext, *, prefix: str, category: str, title_zh: str, title_en: str, handler: str,
            due_days: int, details: dict[str, Any]) -> dict[str, Any]:
    case = open_case(ctx, prefix=prefix, category=category, title_zh=title_zh, title_en=title_en,
                     status_zh="已受理，待处理", status_en="Received, awaiting action", handler_zh=handler,
                     due_days=due_days, details=details)
    return {"reference": case["case_number"],
            "display": case_lines(case) + [line("承办单位", "Handled by", handler)],
            "data": {"case_number": case["case_number"]}}


def _station_for(address: str) -> str:
    return next((s for d, s in STATIONS.items() if d in address), "泉城路派出所")


@operation("lost_document_report")
def lost_document_report(ctx: OpContext) -> dict[str, Any]:
    """S12: a loss report whose slip proves the loss."""
    need_resident(ctx)
    return _report(ctx, prefix="BS", category="lost_document", title_zh="证件遗失报失", title_en="Lost document",
                   handler=_station_for(field(ctx, "lost_place")), due_days=1,
                   details={"document_type": field(ctx, "document_type"), "lost_date": field(ctx, "lost_date")})


@operation("noise_complaint")
def noise_complaint(ctx: OpContext) -> dict[str, Any]:
    """S13: a noise complaint for the station of the address."""
    need_resident(ctx)
    return _report(ctx, prefix="S13", category="complaint", title_zh="噪音扰民投诉", title_en="Noise complaint",
                   handler=_station_for(field(ctx, "address")), due_days=3,
                   details={"noise_type": field(ctx, "noise_type"), "period": field(ctx, "period")})


@operation("dog_nuisance_complaint")
def dog_nuisance_complaint(ctx: OpContext) -> dict[str, Any]:
    """S14: a dog nuisance complaint; a bite is an emergency, not a complaint."""
    need_resident(ctx)
    if field(ctx, "issue") == "bite":
        ctx.refuse("dog_bite_emergency", "犬只伤人属于紧急警情，请立即拨打110，并尽快就医接种狂犬疫苗。",
                   "A dog bite is an emergency: call 110 now and see a doctor for a rabies vaccine.",
                   "拨打110；就近狂犬病暴露预防处置门诊", "call 110; the nearest rabies clinic")
    return _report(ctx, prefix="S14", category="complaint", title_zh="不文明养犬投诉", title_en="Dog nuisance complaint",
                   handler=_station_for(field(ctx, "address")), due_days=3, details={"issue": field(ctx, "issue")})


@operation("public_request_submission")
def public_request_submission(ctx: OpContext) -> dict[str, Any]:
    """S15: a request, suggestion or complaint, answered within five working days."""
    person = need_resident(ctx)
    return _report(ctx, prefix="S15", category="request", title_zh="群众诉求", title_en="Public request",
                   handler=_station_for(person["living_address"]), due_days=5, details={"topic": field(ctx, "topic")})


@operation("request_progress")
def request_progress(ctx: OpContext) -> dict[str, Any]:
    """S16: the resident's complaints and requests with their answers."""
    person = need_resident(ctx)
    cases = ctx.rows("SELECT * FROM cases WHERE id_number = ? AND category IN ('complaint', 'request',"
                     " 'officer_message', 'lost_document', 'theft') ORDER BY created_at DESC", person["id_number"])
    wanted = field(ctx, "tracking_number").upper()
    if wanted:
        cases = [c for c in cases if c["case_number"] == wanted]
    display = [line("诉求件数", "Requests", len(cases))]
    for c in cases:
        display += [line("回执编号", "Tracking number", c["case_number"]), line("事项", "Subject", c["title_zh"]),
                    line("状态", "Status", both(c["status_zh"], c["status_en"]))]
        if c["reply_zh"]:
            display.append(line("答复", "Answer", c["reply_zh"]))
    return {"display": display,
            "data": {"cases": [{"case_number": c["case_number"], "status": c["status_en"], "closed": bool(c["closed"])}
                               for c in cases]}}


@operation("police_notices")
def police_notices(ctx: OpContext) -> dict[str, Any]:
    """S17: the notices are catalog data; the backend counts the reading."""
    views = count_guide_view(ctx)
    return {"display": [line("今日阅读", "Read today", views)], "data": {"views_today": views}}
