"""The simulator's demo people: residents, households, members, relationships, former names.

Residents are built from :data:`kiosk.hardware.simulators.cards.DEMO_CARDS` (so a simulated
card read finds its holder) plus what the backend alone knows: household, flags such as a
criminal record, and how the face matcher treats the resident's live photo. A few people
with no card in the reader exist only here (王小明's household has no other; 李秀英's late
husband 张建国 does). Item-specific records (vehicles, dogs, permits, slots...) are seeded by
the operation modules themselves.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from kiosk.hardware.simulators.cards import DEMO_CARDS

CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS households (
    household_id TEXT PRIMARY KEY,
    household_type TEXT NOT NULL,            -- 家庭户 / 集体户
    address TEXT NOT NULL,
    city TEXT NOT NULL,
    district TEXT NOT NULL,
    police_station TEXT NOT NULL,
    head_id_number TEXT NOT NULL,
    registered_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS residents (
    id_number TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    card_type TEXT NOT NULL DEFAULT 'resident',
    sex TEXT NOT NULL,
    ethnicity TEXT NOT NULL,
    ethnicity_code TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    address TEXT NOT NULL,                   -- the address on the ID card (household address)
    issuer TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',   -- active, deceased
    household_id TEXT REFERENCES households(household_id),
    hukou_city TEXT NOT NULL,                -- where the household registration is
    living_city TEXT NOT NULL,               -- where the resident actually lives
    living_address TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    criminal_record INTEGER NOT NULL DEFAULT 0,
    case_under_review INTEGER NOT NULL DEFAULT 0,
    face_match INTEGER NOT NULL DEFAULT 1,   -- does the live photo match the card photo
    face_score REAL NOT NULL DEFAULT 0.95
);
CREATE TABLE IF NOT EXISTS household_members (
    household_id TEXT NOT NULL REFERENCES households(household_id),
    id_number TEXT NOT NULL REFERENCES residents(id_number),
    relation_to_head_zh TEXT NOT NULL,       -- 户主, 妻, 夫, 女, 子
    relation_to_head_en TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',   -- active, deregistered
    moved_in_on TEXT NOT NULL,
    deregistered_on TEXT,
    deregistration_reason TEXT,              -- death, moved_out, ...
    death_date TEXT,
    death_certificate_no TEXT,
    PRIMARY KEY (household_id, id_number)
);
CREATE TABLE IF NOT EXISTS relationships (
    id_number TEXT NOT NULL REFERENCES residents(id_number),
    relative_id_number TEXT NOT NULL REFERENCES residents(id_number),
    relation TEXT NOT NULL,                  -- spouse, child, parent: the relative is the resident's ...
    PRIMARY KEY (id_number, relative_id_number)
);
CREATE TABLE IF NOT EXISTS former_names (
    id_number TEXT NOT NULL REFERENCES residents(id_number),
    former_name TEXT NOT NULL,
    changed_on TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""

_W = [2 ** (17 - i) % 11 for i in range(17)]


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run a multi-statement SQL script inside the caller's transaction (executescript would commit it)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            conn.execute(buf)
            buf = ""
    if buf.strip(" ;\n"):
        conn.execute(buf)


def gb11643_check(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number."""
    r = (12 - sum(int(c) * w for c, w in zip(first17, _W)) % 11) % 11
    return "X" if r == 10 else str(r)


def gb11643_valid(id_number: str) -> bool:
    """True when an 18-character ID number carries its correct check character."""
    return (len(id_number) == 18 and id_number[:17].isdigit()
            and id_number[17].upper() == gb11643_check(id_number[:17]))


@dataclass(frozen=True)
class DemoResident:
    """What the backend knows of one demo resident beyond the card."""

    id_number: str
    household_id: str
    relation_to_head_zh: str
    relation_to_head_en: str
    hukou_city: str
    living_city: str
    living_address: str
    phone: str
    criminal_record: bool = False
    case_under_review: bool = False
    face_match: bool = True
    face_score: float = 0.95


@dataclass(frozen=True)
class Household:
    """One registered household (户)."""

    household_id: str
    household_type: str
    address: str
    city: str
    district: str
    police_station: str
    head_id_number: str
    registered_on: str


WANG_XIAOMING = "37010219850315123X"
SUN_LI = "370102198812128906"
WANG_SIQI = "370102200002296780"
LI_XIUYING = "370103196208082347"
ZHANG_WEI = "370104199001013459"
LIU_FANG = "410105197805204568"
CHEN_JIE = "370112199511115674"
ZHAO_GUOQIANG = "370103195507127897"
# 李秀英's late husband: no card in the reader, only records here.
ZHANG_JIANGUO = "370103195604201315"
ZHANG_JIANGUO_DEATH_DATE = "2023-06-18"
ZHANG_JIANGUO_DEATH_CERTIFICATE = "N370103-2023-0618-0127"

HOUSEHOLDS: tuple[Household, ...] = (
    Household("370102-010188", "家庭户", "山东省济南市历下区泉城路188号3单元502室", "济南市", "历下区",
              "济南市公安局历下分局泉城路派出所", WANG_XIAOMING, "2010-05-20"),
    Household("370103-020056", "家庭户", "山东省济南市市中区经七路56号1号楼201室", "济南市", "市中区",
              "济南市公安局市中分局经七路派出所", LI_XIUYING, "1986-09-01"),
    Household("370104-030300", "家庭户", "山东省济南市槐荫区经十路3000号", "济南市", "槐荫区",
              "济南市公安局槐荫分局道德街派出所", ZHANG_WEI, "2012-03-08"),
    Household("410105-040012", "家庭户", "河南省郑州市金水区花园路12号", "郑州市", "金水区",
              "郑州市公安局金水分局花园路派出所", LIU_FANG, "2001-07-15"),
    Household("370112-050088", "家庭户", "山东省济南市历城区花园路88号", "济南市", "历城区",
              "济南市公安局历城分局花园路派出所", CHEN_JIE, "2013-10-10"),
    Household("370103-060020", "家庭户", "山东省济南市市中区英雄山路20号", "济南市", "市中区",
              "济南市公安局市中分局英雄山派出所", ZHAO_GUOQIANG, "1980-04-02"),
)

DEMO_RESIDENTS: tuple[DemoResident, ...] = (
    DemoResident(WANG_XIAOMING, "370102-010188", "户主", "head of household", "济南市", "济南市",
                 "山东省济南市历下区泉城路188号3单元502室", "13805310001", face_score=0.97),
    DemoResident(SUN_LI, "370102-010188", "妻", "wife", "济南市", "济南市",
                 "山东省济南市历下区泉城路188号3单元502室", "13805310002", face_score=0.94),
    DemoResident(WANG_SIQI, "370102-010188", "女", "daughter", "济南市", "济南市",
                 "山东省济南市历下区泉城路188号3单元502室", "13805310003", face_score=0.96),
    DemoResident(LI_XIUYING, "370103-020056", "户主", "head of household", "济南市", "济南市",
                 "山东省济南市市中区经七路56号1号楼201室", "13905310004", face_score=0.91),
    DemoResident(ZHANG_WEI, "370104-030300", "户主", "head of household", "济南市", "济南市",
                 "山东省济南市槐荫区经十路3000号", "13605310005", criminal_record=True, face_score=0.93),
    DemoResident(LIU_FANG, "410105-040012", "户主", "head of household", "郑州市", "济南市",
                 "山东省济南市历下区文化东路50号2单元301室", "13705310006",
                 face_match=False, face_score=0.41),
    DemoResident(CHEN_JIE, "370112-050088", "户主", "head of household", "济南市", "济南市",
                 "山东省济南市历城区花园路88号", "13505310007", face_score=0.92),
    DemoResident(ZHAO_GUOQIANG, "370103-060020", "户主", "head of household", "济南市", "济南市",
                 "山东省济南市市中区英雄山路20号", "13305310008", case_under_review=True, face_score=0.95),
)

# (resident, relative, what the relative is to the resident); the inverse is added too.
RELATIONSHIPS: tuple[tuple[str, str, str], ...] = (
    (WANG_XIAOMING, SUN_LI, "spouse"),
    (WANG_XIAOMING, WANG_SIQI, "child"),
    (SUN_LI, WANG_SIQI, "child"),
    (LI_XIUYING, ZHANG_JIANGUO, "spouse"),
)
_INVERSE = {"spouse": "spouse", "child": "parent", "parent": "child"}

FORMER_NAMES: tuple[tuple[str, str, str, str], ...] = (
    (LI_XIUYING, "李秀芳", "1983-04-11", "本人申请变更姓名"),
)


def _demo_resident(id_number: str) -> DemoResident:
    for r in DEMO_RESIDENTS:
        if r.id_number == id_number:
            return r
    raise KeyError("no demo resident with that number")


def _household(household_id: str) -> Household:
    return next(h for h in HOUSEHOLDS if h.household_id == household_id)


def seed_core(conn: sqlite3.Connection) -> None:
    """Create the people tables and insert the demo people (call once on a fresh database)."""
    run_script(conn, CORE_SCHEMA)
    conn.executemany(
        "INSERT INTO households VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(h.household_id, h.household_type, h.address, h.city, h.district, h.police_station,
          h.head_id_number, h.registered_on) for h in HOUSEHOLDS])
    for card in DEMO_CARDS:
        extra = _demo_resident(card.id_number)
        conn.execute(
            "INSERT INTO residents (id_number, name, card_type, sex, ethnicity, ethnicity_code, birth_date,"
            " address, issuer, valid_from, valid_to, status, household_id, hukou_city, living_city,"
            " living_address, phone, criminal_record, case_under_review, face_match, face_score)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (card.id_number, card.name, card.card_type, card.sex, card.ethnicity, card.ethnicity_code,
             card.birth_date, card.address, card.issuer, card.valid_from, card.valid_to,
             extra.household_id, extra.hukou_city, extra.living_city, extra.living_address, extra.phone,
             int(extra.criminal_record), int(extra.case_under_review), int(extra.face_match),
             extra.face_score))
        conn.execute(
            "INSERT INTO household_members (household_id, id_number, relation_to_head_zh,"
            " relation_to_head_en, moved_in_on) VALUES (?, ?, ?, ?, ?)",
            (extra.household_id, card.id_number, extra.relation_to_head_zh, extra.relation_to_head_en,
             card.birth_date if extra.relation_to_head_zh == "女" else _household(extra.household_id).registered_on))
    # 张建国: 李秀英's husband, household head until his death, deregistered by death.
    conn.execute(
        "INSERT INTO residents (id_number, name, sex, ethnicity, ethnicity_code, birth_date, address, issuer,"
        " valid_from, valid_to, status, household_id, hukou_city, living_city, living_address,"
        " face_match, face_score) VALUES (?, '张建国', 'male', '汉', '01', '1956-04-20', ?,"
        " '济南市公安局市中分局', '2006-04-20', 'long-term', 'deceased', '370103-020056', '济南市', '济南市', ?,"
        " 0, 0.0)",
        (ZHANG_JIANGUO, HOUSEHOLDS[1].address, HOUSEHOLDS[1].address))
    conn.execute(
        "INSERT INTO household_members (household_id, id_number, relation_to_head_zh, relation_to_head_en,"
        " status, moved_in_on, deregistered_on, deregistration_reason, death_date, death_certificate_no)"
        " VALUES ('370103-020056', ?, '夫', 'husband', 'deregistered', '1986-09-01', '2023-07-02', 'death',"
        " ?, ?)",
        (ZHANG_JIANGUO, ZHANG_JIANGUO_DEATH_DATE, ZHANG_JIANGUO_DEATH_CERTIFICATE))
    for person, relative, relation in RELATIONSHIPS:
        conn.execute("INSERT INTO relationships VALUES (?, ?, ?)", (person, relative, relation))
        conn.execute("INSERT INTO relationships VALUES (?, ?, ?)", (relative, person, _INVERSE[relation]))
    conn.executemany("INSERT INTO former_names VALUES (?, ?, ?, ?)", FORMER_NAMES)
