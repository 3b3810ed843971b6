"""Which demo person does each catalog item, and what they type: the happy path per item.

One place for what both scripted residents need: ``kiosk demo`` (through the touch UI) and
the workflow tests (through the engine without Kivy). The people are the demo cards of
:mod:`kiosk.hardware.simulators.cards`; the values match the records the backend simulator
seeds for them (a lease contract, an e-bike invoice, a fine-only violation). Everything else
is derived from the catalog field: its choices, its date bounds, its type.

People are named by a short key (``WANG``, ``ZHANG``, ...), which is also how a demo script
says "this resident" (``kiosk demo --flow S01:ZHANG``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from kiosk import localtime
from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.simulators.cards import TravelDocument, card_by_number, travel_document_by_number

# Short keys for the demo people (ID card numbers; SMITH is known by his passport number).
PEOPLE: dict[str, str] = {
    "WANG": "37010219850315123X",   # 王小明: household head, clean record, car with fines, HK/Macau permit
    "SUN": "370102198812128906",    # 孙丽: his spouse; unpaid ID card fee, plate ready, passport ready
    "SIQI": "370102200002296780",   # 王思琪: their daughter; a new car to register
    "LI": "370103196208082347",     # 李秀英: widow (deregistration on file), a dog, HK/Macau fee due
    "ZHANG": "370104199001013459",  # 张伟: criminal record; violations with points; a decided accident
    "LIU": "410105197805204568",    # 刘芳: tenant with a lapsed residence permit; face check fails
    "CHEN": "370112199511115674",   # 陈杰: expired ID card
    "ZHAO": "370103195507127897",   # 赵国强: case under review; licence suspended
    "SMITH": "533401987",           # John SMITH: British passport, foreign guest
}
DEFAULT_PERSON = "WANG"
# Travel documents per person (the chip the PC/SC reader holds for them).
TRAVEL_DOCUMENTS: dict[str, str] = {"WANG": "C12345678", "SUN": "C87654321", "SMITH": "533401987"}

# Values the field type alone cannot guess: formats the backend checks, records it seeded.
SAMPLES: dict[str, str] = {
    "relative_name": "孙丽", "relative_id_number": PEOPLE["SUN"],
    "new_owner_name": "孙丽", "new_owner_id_number": PEOPLE["SUN"],
    "tenant_name": "孙丽", "tenant_id_number": PEOPLE["SUN"],
    "id_number": PEOPLE["ZHANG"], "name": "张伟",
    "vaccine_cert_number": "YM2024000123", "insurance_policy_number": "PDAA202437010000001234",
    "lease_contract_number": "ZL202401050001", "birth_certificate_number": "Q370000002",
    "frame_number": "YD2024A0012345", "other_plate": "鲁B6M338", "verification_code": "ABCD2345EFGH6789",
    "property_cert_number": "鲁(2021)济南市不动产权第0067890号",
    "other_name": "王晓明", "new_name": "王晓明", "child_name": "王小宝", "deceased_name": "张建国",
    "host_name": "王小明", "dog_name": "旺财",
}


def _days(n: int) -> str:
    return (localtime.today() + dt.timedelta(days=n)).isoformat()


def _happy() -> dict[str, tuple[str | None, dict[str, str]]]:
    # Built per call: dates are relative to today, as the simulator seeds its records.
    return {
        "H03": ("LI", {"deceased_name": "张建国", "deceased_id_number": "370103195604201315"}),
        "H04": ("LI", {}),
        "H08": (None, {"subject_name": "王子轩", "subject_id_number": "370102201306010117", "new_ethnicity": "03"}),
        "H10": (None, {"child_name": "王小宝"}),
        "H12": ("CHEN", {}),  # an expired card is what renewal is for
        "H16": ("SUN", {}),  # her ID card application is open (fee SF20240001)
        "H18": ("SUN", {}),
        "H19": ("LIU", {"address": "山东省济南市历下区文化东路50号2单元301室"}),
        "H20": ("LIU", {}),
        "H21": ("LIU", {}),
        "H22": ("LIU", {}),
        "S04": ("LI", {}),
        "T02": (None, {"violation": "WF0001"}),  # fine only; the other one carries points
        "T09": ("SUN", {"exam_number": "3701022026110002", "exam_date": _days(-10)}),
        "T12": ("SIQI", {"vin": "LFV2A21K6R3045678", "invoice_number": "24370000888888"}),
        "T13": ("SUN", {}),
        "T18": ("ZHANG", {}),
        "E01": (None, {"endorsement_type": "1B", "destination": "HK"}),
        "E03": ("SUN", {"document_type": "tw_permit"}),
        "H15": (None, {"id_number": PEOPLE["ZHAO"], "name": "赵国强"}),
        "S03": (None, {"dog_name": "旺财", "color": "黄色"}),
        "S05": (None, {"invoice_number": "24370000123456"}),
        "S09": ("SMITH", {"stay_from": _days(0), "stay_to": _days(7)}),
        "T10": (None, {"plate": "鲁AD12345"}),
        "E08": ("LI", {}),
        "E09": ("SUN", {}),
    }


def person_for(item: Any) -> str:
    """The key of the demo person whose records pass ``item``'s rules."""
    return _happy().get(item.id, (None, {}))[0] or DEFAULT_PERSON


def person_key(text: str) -> str:
    """A person key from a key (any case) or an ID/document number. Raises KeyError."""
    key = text.strip().upper()
    if key in PEOPLE:
        return key
    for name, number in PEOPLE.items():
        if number == key or TRAVEL_DOCUMENTS.get(name) == key:
            return name
    raise KeyError(f"no demo person {text!r} (one of {', '.join(PEOPLE)})")


def travel_document_for(item: Any, person: str | None = None) -> TravelDocument:
    """The travel document ``person`` (default: the item's happy-path person) holds. Raises KeyError."""
    key = person or person_for(item)
    if key == DEFAULT_PERSON and person is None and item.id == "S09":
        key = "SMITH"
    return travel_document_by_number(TRAVEL_DOCUMENTS[key])


def card_for(item: Any, person: str | None = None) -> IdentityCard:
    """What ``person`` (default: the item's happy-path person) presents to ``item``'s identify step."""
    if item.identity == "travel_document":
        return travel_document_for(item, person).holder
    return card_by_number(PEOPLE[person or person_for(item)])


def _date_between(spec: Any) -> str:
    from kiosk.services.form_values import resolve_date

    today = localtime.today()
    lo = resolve_date(spec.min_date, today) if spec.min_date else None
    hi = resolve_date(spec.max_date, today) if spec.max_date else None
    if lo and hi:
        day = lo + (hi - lo) / 2
    elif lo:
        day = lo + dt.timedelta(days=1)
    elif hi:
        day = min(hi, today) - dt.timedelta(days=1)
    else:
        day = today - dt.timedelta(days=1)
    return day.isoformat()


def happy_value(item: Any, spec: Any) -> str | None:
    """A value of field ``spec`` that passes ``item``'s happy path; None: take the first lookup option."""
    preset = _happy().get(item.id, (None, {}))[1]
    if spec.name in preset:
        return preset[spec.name]
    if spec.name in SAMPLES and spec.type not in ("choice", "lookup"):
        return SAMPLES[spec.name]
    if spec.type == "choice":
        return spec.choices[0].value
    if spec.type == "lookup":
        return None
    if spec.type == "phone":
        return "13800138000"
    if spec.type == "digits":
        return "1234567890123456"[: max(spec.min_len or 8, 8)][: spec.max_len or 16]
    if spec.type == "date":
        return _date_between(spec)
    if spec.type == "plate":
        return "鲁A12345"
    if spec.type == "id_number":
        return PEOPLE["SUN"]
    if spec.type == "number":
        return str(int(spec.min_value or 0) + 1000)
    return "济南市历下区泉城路一百八十八号"


def happy_values(item: Any, options: Any = None, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Values of every required field; ``options(field_name)`` gives a lookup's options (first one taken)."""
    values: dict[str, str] = {}
    for spec in item.fields:
        if not spec.required:
            continue
        value = happy_value(item, spec)
        if value is None and options is not None:
            value = str(options(spec.name)[0]["value"])
        if value is not None:
            values[spec.name] = value
    values.update(overrides or {})
    return values


# Items whose happy path prints a document with a verification code (for S02 to check).
PRINTS_A_CODE = ("H01", "H02", "H04", "H16", "S01", "T16")


def run_order(item_ids: list[str]) -> list[str]:
    """``item_ids`` in an order where each flow finds what an earlier one left.

    S02 checks the verification code of a document printed earlier in the run, so it
    goes after the first item that prints one; everything else keeps catalog order.
    """
    ids = list(item_ids)
    if "S02" in ids:
        printers = [i for i in ids if i in PRINTS_A_CODE]
        if printers:
            ids.remove("S02")
            ids.insert(ids.index(printers[0]) + 1, "S02")
    return ids


__all__ = ["PEOPLE", "DEFAULT_PERSON", "SAMPLES", "person_for", "person_key", "card_for",
           "travel_document_for",
           "happy_value", "happy_values", "run_order"]
