"""The catalog: the 71 reference items, its validation at load, the field normalisers, the CLI."""
from __future__ import annotations

import ast
import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import polib
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.errors import CatalogError, FieldError, UnknownItemError
from kiosk.i18n import LOCALE_DIR
from kiosk.services import catalog as catalog_module
from kiosk.services import form_values
from kiosk.services.catalog import DEFAULT_PATH, Catalog, FieldSpec, parse_catalog
from kiosk.services.form_values import PLATE_RE, id_number_valid
from kiosk.services.stats import RATINGS

# The project's reference list (ids, names, kinds), as given to every part.
REFERENCE = """
H01|户籍证明打印|Household registration certificate|certificate
H02|亲属关系证明|Kinship relationship certificate|certificate
H03|户口注销证明（死亡注销）|Household deregistration (death) certificate|certificate
H04|曾用名证明|Former name certificate|certificate
H05|同一人证明申请|Same-person certificate application|application
H06|姓名变更申请|Name change application|application
H07|出生日期更正申请|Birth date correction application|application
H08|民族成分变更申请|Ethnicity change application|application
H09|户口迁移办理进度查询|Household transfer progress query|query
H10|出生登记预约|Birth registration appointment|appointment
H11|户口簿补领申请|Household register booklet replacement|application
H12|身份证到期换领|ID card renewal on expiry|application
H13|身份证损坏换领|ID card replacement (damaged)|application
H14|身份证丢失补领|ID card replacement (lost)|application
H15|身份证挂失|Report a lost ID card|report
H16|临时身份证明打印|Temporary identity certificate|certificate
H17|身份证办理进度查询|ID card progress query|query
H18|身份证工本费缴纳|ID card fee payment|payment
H19|居住登记|Residence registration|application
H20|居住证申领|Residence permit application|application
H21|居住证签注|Residence permit endorsement|application
H22|居住证积分查询|Residence permit points query|query
S01|无犯罪记录证明|No-criminal-record certificate|certificate
S02|证明文件真伪核验|Verify a printed certificate|verify
S03|养犬登记|Dog registration|application
S04|养犬年检|Dog annual inspection|application
S05|电动自行车登记挂牌|E-bike registration and plate|application
S06|电动自行车过户|E-bike ownership transfer|application
S07|电动自行车被盗报案|E-bike theft report|report
S08|出租房屋登记|Rental housing registration|application
S09|境外人员住宿登记|Foreign guest accommodation registration|application
S10|人民调解预约|Mediation appointment|appointment
S11|失物招领查询|Lost and found query|query
S12|证件遗失报失|Report lost documents|report
S13|噪音扰民投诉|Noise complaint|report
S14|不文明养犬投诉|Dog nuisance complaint|report
S15|群众诉求提交|Submit a request or suggestion|report
S16|诉求办理进度查询|Request progress query|query
S17|警务提示与防诈骗宣传|Police notices and anti-fraud alerts|guide
T01|交通违法查询|Traffic violation query|query
T02|交通违法处理|Traffic violation handling|certificate
T03|交通违法罚款缴纳|Traffic fine payment|payment
T04|驾驶证记分查询|Driving licence points query|query
T05|驾驶证状态查询|Driving licence status query|query
T06|驾驶证期满换证|Driving licence renewal|application
T07|驾驶证遗失补证|Driving licence replacement (lost)|application
T08|驾驶证损毁换证|Driving licence replacement (damaged)|application
T09|驾驶人体检信息申报|Driver medical check submission|application
T10|机动车检验标志申领（六年免检）|Inspection-exempt label (six-year)|application
T11|机动车行驶证补领|Vehicle licence replacement|application
T12|临时号牌申领|Temporary plate application|application
T13|号牌领取预约|Plate pickup appointment|appointment
T14|机动车信息查询|Vehicle information query|query
T15|机动车违法记录打印|Vehicle violation record|certificate
T16|驾驶人安全驾驶证明|Safe driving certificate|certificate
T17|交通事故快处快赔|Minor accident quick settlement|report
T18|交通事故认定书打印|Accident determination print|certificate
E01|往来港澳通行证再次签注|Hong Kong/Macau permit re-endorsement|application
E02|往来台湾通行证签注|Taiwan permit endorsement|application
E03|出入境证件申请预受理|Exit-entry document pre-acceptance|application
E04|出入境证件办理进度查询|Exit-entry progress query|query
E05|出入境记录查询|Exit/entry record query|query
E06|剩余签注次数查询|Remaining endorsements query|query
E07|出入境证件照片采集|Exit-entry document photo capture|application
E08|出入境费用缴纳|Exit-entry fee payment|payment
E09|出入境证件领取预约|Exit-entry document pickup appointment|appointment
G01|窗口业务预约|Counter service appointment|appointment
G02|办事指南|Service guides|guide
G03|户籍业务咨询|Household registration questions|guide
G04|联系社区民警|Contact the community officer|report
G05|满意度评价|Satisfaction rating|report
"""
REFERENCE_ROWS = [tuple(line.split("|")) for line in REFERENCE.strip().splitlines()]
TODAY = dt.date(2026, 6, 15)
CERTIFICATES_WITH_DOCUMENT = {"H01", "H02", "H03", "H04", "H16", "S01", "T02", "T15", "T16", "T18"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


# --- the 71 items --------------------------------------------------------------------------------
def test_exactly_the_71_reference_items(catalog: Catalog) -> None:
    assert len(REFERENCE_ROWS) == 71
    assert [(i.id, i.name_zh, i.name_en, i.kind) for i in catalog.items] == REFERENCE_ROWS
    counts = {c.code: len(catalog.in_category(c.code)) for c in catalog.categories()}
    assert counts == {"H": 22, "S": 17, "T": 18, "E": 9, "G": 5}
    assert [c.name_zh for c in catalog.categories()] == ["户政", "治安与社区", "交管", "出入境", "综合"]
    assert catalog.get("S03").category_en == "Public order and community"


def test_outputs_identity_and_fees_follow_the_item_kinds(catalog: Catalog) -> None:
    for item in catalog:
        if item.kind == "certificate":
            assert item.outputs == ("a4_document", "receipt"), item.id
        if item.kind in ("application", "appointment"):
            assert "slip" in item.outputs, item.id
        if item.kind == "query":
            assert item.outputs[0] == "screen", item.id
        if item.kind == "payment":
            assert item.outputs == ("receipt",) and item.fee_cny is None and item.amount_source, item.id
        if item.kind == "guide":
            assert item.identity == "none" and not item.needs_backend and item.guide_zh and item.guide_en
        if item.needs_payment and item.kind != "payment":
            assert "receipt" in item.outputs, item.id
    assert {i.id for i in catalog if i.kind == "certificate"} == CERTIFICATES_WITH_DOCUMENT
    s01 = catalog.get("S01")
    assert s01.identity == "id_card_and_face" and s01.needs_identity
    assert len(s01.field("purpose").choices) >= 5 and s01.expected_minutes == 1
    assert catalog.get("S09").identity == "travel_document" and catalog.get("E01").identity == "travel_document"
    assert not catalog.get("G05").needs_identity
    assert [catalog.get(i).fee_cny for i in ("H12", "H13", "H14", "H16", "S01", "E01", "T06", "T12")] == \
        [20.0, 20.0, 20.0, 0.0, 0.0, 15.0, 10.0, 5.0]
    assert catalog.get("T03").fee_cny is None and catalog.get("E08").fee_cny is None


def test_flagship_fields(catalog: Catalog) -> None:
    e01 = catalog.get("E01")
    assert e01.field("endorsement_type").choice_values() == ("11", "12", "1B", "1G", "19")
    assert e01.amount_fen({"count": "2"}) == 3000 and e01.amount_fen({"count": "1"}) == 1500
    assert {f.name for f in catalog.get("S05").fields} >= {"frame_number", "invoice_number"}
    assert {f.name for f in catalog.get("S09").fields} >= {"stay_from", "stay_to", "host_address"}
    assert catalog.get("H19").field("lease_contract_number").pattern
    assert catalog.get("H20").field("lease_contract_number").required
    assert catalog.get("G05").field("rating").choice_values() == ("satisfied", "basically_satisfied", "dissatisfied")
    assert not catalog.get("G05").field("reason").required
    t03 = catalog.get("T03")
    options = {"decision": [{"value": "A", "amount_fen": 14500}, {"value": "B", "amount_fen": 100}]}
    assert t03.amount_fen({"decision": "A"}, options) == 14500
    assert t03.amount_fen({"decision": "Z"}, options) is None
    assert catalog.get("H01").amount_fen({}) == 0


def test_summary_search_and_unknown_items(catalog: Catalog) -> None:
    summary = catalog.get("T03").summary()
    assert summary["fee_cny"] is None and summary["needs_identity"] is True and summary["outputs"] == ["receipt"]
    assert [i.id for i in catalog.search("身份证")][:3] == ["H12", "H13", "H14"]
    assert [i.id for i in catalog.search("e-bike")] == ["S05", "S06", "S07"]
    assert catalog.search("  ") == catalog.items
    with pytest.raises(UnknownItemError):
        catalog.get("X99")
    assert Catalog.load() is catalog  # parsed once


def test_per_item_rules_are_catalog_data(catalog: Catalog) -> None:
    assert {i.id for i in catalog if i.accepts_expired_card} == {"H12", "H17"}
    raters = [i for i in catalog if i.rating is not None]
    assert [i.id for i in raters] == ["G05"]
    rule = raters[0].rating
    assert raters[0].field(rule.choice_field).choice_values() == RATINGS  # what the statistics count
    assert raters[0].field(rule.rated_item_field).type == "text"
    cards = {i.identity: set() for i in catalog}
    for item in catalog:
        cards[item.identity].add(item.accepted_cards)
    assert cards == {"none": {()}, "id_card": {("resident",)}, "id_card_and_face": {("resident",)},
                     "travel_document": {("passport", "permit")}}


def test_an_item_opens_itself_to_another_card_type(raw: dict, tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        _item(d, "H16").update(accepted_cards=["resident", "foreign_permanent", "hkmt_residence"])
        d["identities"]["travel_document"] = {"accepted_cards": ["passport"]}
    catalog = Catalog.load(_broken(raw, tmp_path, edit))
    assert catalog.get("H16").accepted_cards == ("resident", "foreign_permanent", "hkmt_residence")
    assert catalog.get("H01").accepted_cards == ("resident",)
    assert catalog.get("E01").accepted_cards == ("passport",)


def test_the_home_tiles_are_catalog_data_and_config_overrides_them(catalog: Catalog) -> None:
    assert [i.id for i in catalog.home_items()] == ["H01", "S01", "T02"]
    assert [catalog.icon(i) for i in catalog.home_items()] == ["file-text", "certificate", "ticket"]
    assert catalog.icon(catalog.get("H02")) == "id-card"  # no icon of its own: its category's
    assert [i.id for i in catalog.home_items(("T03", "E01"))] == ["T03", "E01"]
    assert catalog.home_items(()) == ()
    with pytest.raises(UnknownItemError):
        catalog.home_items(("H99",))


def test_every_operation_is_unique_and_every_lookup_named(catalog: Catalog) -> None:
    assert len({i.operation for i in catalog}) == 71
    for item in catalog:
        for f in item.fields:
            assert (f.type == "lookup") == (f.source is not None), (item.id, f.name)


ROOT = Path(__file__).resolve().parents[2]


def _names_an_item(path: Path, ids: set[str]) -> list[str]:
    """Where the code in ``path`` names an item id as a string of its own (the demo's run_demo flows aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    demo_flows = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call)
                  and getattr(call.func, "id", getattr(call.func, "attr", "")) == "run_demo" for n in ast.walk(call)}
    return [f"{path.relative_to(ROOT)}:{n.lineno} {n.value}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and n.value in ids and id(n) not in demo_flows]


def _not_the_simulator_or_the_demo(path: Path) -> bool:
    inside = path.relative_to(ROOT).parts
    return "backend_sim" not in inside and not (inside[0] == "kiosk" and inside[1].startswith("demo"))


def test_no_code_outside_the_catalog_the_simulator_and_the_demo_names_an_item(catalog: Catalog) -> None:
    ids = {item.id for item in catalog}
    files = [p for top in ("kiosk", "provisioning", "print_templates") for p in (ROOT / top).rglob("*.py")
             if _not_the_simulator_or_the_demo(p)]
    assert len(files) > 100 and ROOT / "kiosk" / "services" / "stats.py" in files
    assert [hit for path in files for hit in _names_an_item(path, ids)] == []
    assert [p for p in (ROOT / "kiosk").rglob("*.kv") if any(i in p.read_text(encoding="utf-8") for i in ids)] == []


# --- validation at load ------------------------------------------------------------------------------
def _broken(raw: dict, tmp_path: Path, edit) -> Path:
    data = json.loads(json.dumps(raw, ensure_ascii=False))
    edit(data)
    path = tmp_path / "catalog.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper, allow_unicode=True), encoding="utf-8")
    return path


def _item(data: dict, item_id: str) -> dict:
    return next(i for i in data["items"] if i["id"] == item_id)


BROKEN = [
    ("duplicate id", lambda d: d["items"].append(dict(_item(d, "H01"), operation="x_other")), "item H01: id"),
    ("unknown kind", lambda d: _item(d, "S05").update(kind="licence"), "item S05: kind"),
    ("unknown identity", lambda d: _item(d, "S01").update(identity="iris"), "item S01: identity"),
    ("missing name", lambda d: _item(d, "T07").pop("name_en"), "item T07: name_en"),
    ("missing operation", lambda d: _item(d, "E04").pop("operation"), "item E04: operation"),
    ("shared operation", lambda d: _item(d, "H02").update(operation="household_certificate"), "item H02: operation"),
    ("bad regex", lambda d: _item(d, "H19")["fields"][0].update(pattern="ZL[0-9"),
     "item H19 field lease_contract_number: pattern"),
    ("unknown field type", lambda d: _item(d, "H05")["fields"][0].update(type="colour"), "item H05 field other_name: type"),
    ("choice without choices", lambda d: _item(d, "S01")["fields"][0].update(choices=[]), "item S01 field purpose: choices"),
    ("lookup without source", lambda d: _item(d, "T02")["fields"][0].pop("source"), "item T02 field violation: source"),
    ("typo key", lambda d: _item(d, "G04").update(ouputs=["slip"]), "item G04: ouputs"),
    ("bad output", lambda d: _item(d, "S11").update(outputs=["fax"]), "item S11: outputs"),
    ("negative fee", lambda d: _item(d, "H12").update(fee_cny=-20), "item H12: fee_cny"),
    ("payment without amount", lambda d: _item(d, "E08").pop("amount_source"), "item E08: amount_source"),
    ("guide without text", lambda d: _item(d, "G02").pop("guide_en"), "item G02: guide_zh"),
    ("bad date bound", lambda d: _item(d, "E05")["fields"][0].update(min_date="yesterday"),
     "item E05 field date_from: min_date"),
    ("wrong category", lambda d: _item(d, "T01").update(category="H"), "item T01: category"),
    ("no items", lambda d: d.update(items=[]), "top level: items"),
    ("top-level typo", lambda d: d.update(categores={}), "top level: categores"),
    ("choice typo", lambda d: _item(d, "H13")["fields"][0]["choices"][0].update(lable_en="Chip"),
     "item H13 field damage: lable_en"),
    ("category typo", lambda d: d["categories"]["G"].update(nmae_en="General"), "category G: nmae_en"),
    ("unreadable card", lambda d: _item(d, "H01").update(accepted_cards=["passport"]),
     "item H01: accepted_cards: 'passport' cannot be read for identity id_card"),
    ("unknown card", lambda d: _item(d, "H01").update(accepted_cards=["library_card"]), "item H01: accepted_cards"),
    ("card without identity", lambda d: _item(d, "G02").update(accepted_cards=["resident"]),
     "item G02: accepted_cards: an item without identity accepts no card"),
    ("identity default unreadable", lambda d: d["identities"].update(travel_document={"accepted_cards": ["resident"]}),
     "identity travel_document: accepted_cards: 'resident' cannot be read for identity travel_document"),
    ("identity without cards", lambda d: d["identities"].pop("id_card"), "item H01: accepted_cards: missing"),
    ("expired card not a flag", lambda d: _item(d, "H12").update(accepts_expired_card="yes"),
     "item H12: accepts_expired_card: must be true or false"),
    ("rating on a text field", lambda d: _item(d, "G05")["rating"].update(choice_field="reason"),
     "item G05: rating: choice_field must name a choice field of the item: 'reason'"),
    ("rating typo", lambda d: _item(d, "G05")["rating"].update(rated_item="rated_item"), "item G05: rated_item"),
    ("home tile not an item", lambda d: d.update(home_items=["H01", "H99"]),
     "top level: home_items: names no item of the catalog: 'H99'"),
    ("home tile twice", lambda d: d.update(home_items=["H01", "H01"]), "top level: home_items: an item is listed twice"),
    ("too many home tiles", lambda d: d.update(home_items=["H01", "H02", "H03", "H04", "H05"]),
     "top level: home_items: must be a list of at most 4 item ids"),
    ("category without icon", lambda d: d["categories"]["T"].pop("icon"), "category T: icon: missing"),
    ("bad icon name", lambda d: _item(d, "S01").update(icon="Certificate!"), "item S01: icon: bad icon name"),
]


@pytest.mark.parametrize("case, edit, where", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_catalog_is_refused_naming_item_and_key(raw: dict, tmp_path: Path, case, edit, where: str) -> None:
    path = _broken(raw, tmp_path, edit)
    with pytest.raises(CatalogError) as info:
        Catalog.load(path)
    assert where in str(info.value)
    assert info.value.code == "catalog_invalid"


EXACT = [
    (lambda d: _item(d, "H19")["fields"][0].update(pattern="ZL[0-9"),
     "catalog: item H19 field lease_contract_number: pattern: bad regular expression: "
     "unterminated character set at position 2"),
    (lambda d: _item(d, "S05").update(kind="licence"), "catalog: item S05: kind: unknown kind 'licence' (one of "
     "certificate, application, query, payment, appointment, report, guide, verify)"),
    (lambda d: _item(d, "T07").update(name_en=5), "catalog: item T07: name_en: must be text, got int"),
    (lambda d: _item(d, "G04")["fields"][0].update(name="Bad"), "catalog: item G04: fields.name: bad field name 'Bad'"),
    (lambda d: _item(d, "G04")["fields"].append("x"), "catalog: item G04: fields: each field must be a mapping"),
    (lambda d: _item(d, "S01")["fields"][0]["choices"][0].pop("value"),
     "catalog: item S01 field purpose: choices: each choice needs value, label_zh, label_en"),
    (lambda d: _item(d, "E05")["fields"][0].update(min_date="yesterday"),
     "catalog: item E05 field date_from: min_date: bad date bound 'yesterday'"),
    (lambda d: _item(d, "E01").update(fee_count_field="nope"),
     "catalog: item E01: fee_count_field: names no field of the item: 'nope'"),
    (lambda d: _item(d, "T01").update(id="TT1"), "catalog: items[39]: id: bad or missing item id 'TT1'"),
    (lambda d: _item(d, "T01").pop("id"), "catalog: items[39]: id: bad or missing item id None"),
    (lambda d: d["items"].append("x"), "catalog: items[71]: item: must be a mapping"),
    (lambda d: d["categories"].update(Q="x"), "catalog: category Q: category: must be a mapping with name_zh, name_en"),
    (lambda d: d.pop("categories"), "catalog: top level: categories: missing or not a mapping"),
]


@pytest.mark.parametrize("edit, message", EXACT, ids=[m.split(": ", 2)[1] + " " + m.split(": ")[2] for _, m in EXACT])
def test_catalog_errors_keep_their_exact_texts(raw: dict, tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.load(_broken(raw, tmp_path, edit))
    assert str(info.value) == message


def test_the_records_refuse_what_the_schema_does_not_declare() -> None:
    with pytest.raises(ValueError, match="unexpected_keyword_argument|Unexpected keyword"):
        FieldSpec("f", "字段", "Field", "text", requird=False)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown type 'colour'"):
        FieldSpec("f", "字段", "Field", "colour")


def test_unreadable_and_non_yaml_catalogs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("items: [\n  - id: H01\n  kind: [", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        Catalog.load(bad)
    with pytest.raises(CatalogError, match="cannot read"):
        Catalog.load(tmp_path / "missing.yaml")
    with pytest.raises(CatalogError, match="top level"):
        parse_catalog(["not", "a", "mapping"])


def test_a_copy_of_the_real_catalog_loads(raw: dict, tmp_path: Path) -> None:
    path = _broken(raw, tmp_path, lambda d: None)
    assert len(Catalog.load(path)) == 71


# --- field validators ------------------------------------------------------------------------------
def spec(ftype: str, **kw) -> FieldSpec:
    if ftype == "lookup":
        kw.setdefault("source", "test_source")  # a lookup field without its source is refused as it is built
    return FieldSpec("f", "字段", "Field", ftype, **kw)


@pytest.mark.parametrize("given_, expected", [
    ("鲁A12345", "鲁A12345"), ("鲁a·12345", "鲁A12345"), (" 鲁AD12345 ", "鲁AD12345"), ("鲁A12345D", "鲁A12345D"),
    ("京N8P8F8", "京N8P8F8"), ("鲁Ｂ６Ｍ３３８", "鲁B6M338"), ("鲁A1234学", "鲁A1234学"), ("鲁A-D1234 5", "鲁AD12345"),
])
def test_plates_normalise(given_: str, expected: str) -> None:
    assert spec("plate").validate(given_) == expected


@pytest.mark.parametrize("bad", ["鲁I12345", "鲁A1234", "AA12345", "鲁AD123", "鲁AO2345", "港A12345", "鲁A123456", ""])
def test_bad_plates_raise_field_error(bad: str) -> None:
    with pytest.raises(FieldError) as info:
        spec("plate").validate(bad)
    assert info.value.field == "f"


@pytest.mark.parametrize("given_, expected", [
    ("13805310001", "13805310001"), ("138 0531 0001", "13805310001"), ("+86 138-0531-0001", "13805310001"),
    ("００８６１３８０５３１０００１", "13805310001"),
])
def test_phones_normalise(given_: str, expected: str) -> None:
    assert spec("phone").validate(given_) == expected


@pytest.mark.parametrize("bad", ["12805310001", "1380531000", "138053100011", "0531-86081110", "1380531000X"])
def test_bad_phones(bad: str) -> None:
    with pytest.raises(FieldError):
        spec("phone").validate(bad)


def test_dates_normalise_and_check_their_range() -> None:
    f = spec("date", min_date="today-30d", max_date="today")
    assert f.validate("2026/6/1", today=TODAY) == "2026-06-01"
    assert f.validate("20260615", today=TODAY) == "2026-06-15"
    assert f.validate("2026年6月2日", today=TODAY) == "2026-06-02"
    for bad, msg in (("2026-06-16", "too late"), ("2026-05-15", "too early"), ("2026-02-30", "as YYYY-MM-DD"),
                     ("15/06/2026", "as YYYY-MM-DD")):
        with pytest.raises(FieldError) as info:
            f.validate(bad, today=TODAY)
        assert msg in info.value.message_en
    years = spec("date", min_date="today-1y", max_date="today+3m")
    assert years.validate("2025-06-15", today=TODAY) == "2025-06-15"
    assert years.validate("2026-09-15", today=TODAY) == "2026-09-15"
    with pytest.raises(FieldError):
        years.validate("2026-09-16", today=TODAY)
    leap = spec("date", min_date="today-1y")
    assert leap.validate("2023-02-28", today=dt.date(2024, 2, 29)) == "2023-02-28"


def test_other_types() -> None:
    assert spec("digits", min_len=8).validate(" 2437 0000-1234 ") == "243700001234"
    with pytest.raises(FieldError):
        spec("digits").validate("12三4")
    with pytest.raises(FieldError):
        spec("digits").validate("١٢٣")  # Arabic-Indic digits are digits to Python, not to the backend
    assert spec("id_number").validate("37010219850315123x") == "37010219850315123X"
    with pytest.raises(FieldError):
        spec("id_number").validate("370102198503151230")  # wrong check character
    assert spec("number", min_value=1, max_value=100).validate("23.50") == "23.5"
    for bad in ("abc", "NaN", "Infinity", "0", "1e9"):
        with pytest.raises(FieldError):
            spec("number", min_value=1, max_value=100).validate(bad)
    assert spec("number").validate("1.2e3") == "1200"
    with pytest.raises(FieldError):
        spec("number").validate("9e999999999")  # no range given: still not printed as a billion digits
    choice = FieldSpec("c", "选", "Pick", "choice", choices=(catalog_module.Choice("a", "甲", "A"),))
    assert choice.validate("a") == "a" and choice.choice_label("a", "en") == "A"
    with pytest.raises(FieldError):
        choice.validate("b")
    assert spec("text", required=False).validate("   ") == ""
    with pytest.raises(FieldError) as info:
        spec("text").validate(None)
    assert info.value.message_en == form_values.MSG_REQUIRED
    with pytest.raises(FieldError):
        spec("text").validate("a\x00b")
    with pytest.raises(FieldError):
        spec("text").validate(["list"])
    assert spec("text", upper=True, pattern="[A-Z0-9]{4}").validate("ab 12") == "AB12"


def test_item_validate_reports_the_first_bad_field() -> None:
    item = Catalog.load().get("T17")
    good = {"accident_date": "2026-06-14", "place": "历下区解放路", "own_plate": "鲁a12345", "other_plate": "鲁B6M338",
            "liability": "equal", "injuries": "no", "phone": "13805310001"}
    values = item.validate(good, today=TODAY)
    assert values["own_plate"] == "鲁A12345"
    with pytest.raises(FieldError) as info:
        item.validate({**good, "other_plate": "ABC"}, today=TODAY)
    assert info.value.field == "other_plate"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.sampled_from(["plate", "phone", "date", "digits", "id_number", "number", "text",
                                               "lookup"]))
def test_garbage_never_escapes_as_anything_but_field_error(text: str, ftype: str) -> None:
    f = spec(ftype, min_date="today-100y", max_date="today+1y", min_value=0, max_value=1e6, max_len=20)
    try:
        out = f.validate(text, today=TODAY)
    except FieldError:
        return
    assert isinstance(out, str)
    assert f.validate(out, today=TODAY) == out  # normalisation is idempotent
    if ftype == "plate":
        assert PLATE_RE.fullmatch(out)
    if ftype == "phone":
        assert re.fullmatch(r"1[3-9][0-9]{9}", out)
    if ftype == "date":
        assert dt.date(1926, 6, 15) <= dt.date.fromisoformat(out) <= dt.date(2027, 6, 15)
    if ftype == "id_number":
        assert id_number_valid(out)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"),
       st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"), st.text("0123456789", min_size=5, max_size=5),
       st.sampled_from(["", " ", "·", "-"]), st.booleans())
def test_every_ordinary_plate_is_accepted_in_any_spelling(province, letter, digits, sep, lower) -> None:
    typed = f"{province}{letter.lower() if lower else letter}{sep}{digits}"
    assert spec("plate").validate(typed) == f"{province}{letter}{digits}"


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_any_real_date_in_range_round_trips(day: dt.date) -> None:
    f = spec("date")
    assert f.validate(day.strftime("%Y/%m/%d")) == day.isoformat()
    assert f.validate(day.strftime("%Y%m%d")) == day.isoformat()


def test_every_field_error_message_is_translated() -> None:
    msgids = {e.msgid: e.msgstr for e in polib.pofile(str(LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "catalog.po"))}
    names = [name for name in dir(form_values) if name.startswith("MSG_")]
    assert names  # the messages are where this looks for them
    for name in names:
        assert msgids.get(getattr(form_values, name)), name


# --- CLI ---------------------------------------------------------------------------------------------
def test_kiosk_catalog_json_prints_the_71_items() -> None:
    out = subprocess.run([sys.executable, "-m", "kiosk.cli", "catalog", "--json"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    items = json.loads(out)
    assert len(items) == 71
    keys = {"id", "category", "name_zh", "name_en", "kind", "needs_identity", "identity", "outputs", "fee_cny"}
    assert all(keys <= set(i) for i in items)
    by_id = {i["id"]: i for i in items}
    assert by_id["T03"]["fee_cny"] is None and by_id["H12"]["fee_cny"] == 20
    assert by_id["S01"]["identity"] == "id_card_and_face" and by_id["S17"]["needs_identity"] is False
    assert by_id["H01"]["outputs"] == ["a4_document", "receipt"]


def test_kiosk_catalog_table() -> None:
    out = subprocess.run([sys.executable, "-m", "kiosk.cli", "catalog"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.rstrip().endswith("71 items")
    assert re.search(r"H01\s+户籍证明打印\s+certificate", out)
    assert "T03" in out and "backend" in out


# --- the parsed copy kept between runs ------------------------------------------------------------------------
def test_a_second_start_reads_the_kept_copy_not_the_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIOSK_CACHE_DIR", str(tmp_path / "cache"))
    text = DEFAULT_PATH.read_bytes()
    parsed = catalog_module._contents(text, "first")
    assert parsed == yaml.load(text.decode("utf-8"), Loader=yaml.SafeLoader)
    assert len(list((tmp_path / "cache").glob("catalog-*.marshal"))) == 1

    def no_yaml(*_args: object) -> None:
        raise AssertionError("parsed the YAML again")
    monkeypatch.setattr(catalog_module, "_parse_yaml", no_yaml)
    assert catalog_module._contents(text, "second") == parsed
    # Another catalog file (one byte more) is not served the packaged one's copy.
    with pytest.raises(AssertionError, match="parsed the YAML again"):
        catalog_module._contents(text + b"\n", "changed")


def test_a_damaged_or_unwritable_copy_falls_back_to_the_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KIOSK_CACHE_DIR", str(cache))
    text = DEFAULT_PATH.read_bytes()
    parsed = catalog_module._contents(text, "first")
    (copy,) = cache.glob("catalog-*.marshal")
    copy.write_bytes(copy.read_bytes()[:100])  # cut short
    assert catalog_module._contents(text, "damaged") == parsed
    assert "unreadable" in caplog.text
    assert catalog_module._contents(text, "mended") == parsed  # written again whole
    # A value marshal cannot hold (a YAML date) is not kept, and the file still loads.
    dated = b"when: 2026-12-07\n"
    assert catalog_module._contents(dated, "dated") == {"when": dt.date(2026, 12, 7)}
    # A cache folder that cannot be made (a file in its place) costs the copy, not the catalog.
    monkeypatch.setenv("KIOSK_CACHE_DIR", str(copy))
    assert catalog_module._contents(text, "unwritable") == parsed


def test_only_the_most_recently_used_copies_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KIOSK_CACHE_DIR", str(cache))
    texts = [f"n: {i}\n".encode() for i in range(catalog_module.KEPT_COPIES + 3)]
    catalog_module._contents(texts[0], "0")
    first = next(cache.glob("catalog-*.marshal"))
    for i, text in enumerate(texts[1:], 1):
        time.sleep(0.01)  # file times tick by the kernel's coarse clock (4 ms at 250 Hz): one use, one tick
        catalog_module._contents(text, str(i))
        time.sleep(0.01)
        catalog_module._contents(texts[0], "0")  # used again: stays
    assert len(list(cache.glob("catalog-*.marshal"))) == catalog_module.KEPT_COPIES and first.exists()
