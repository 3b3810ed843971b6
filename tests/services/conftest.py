"""Fixtures for the workflow, recovery and privacy tests: a live backend simulator and a runtime.

The simulator runs in this process on a free loopback port (started here, stopped here);
each test gets its own state folder, so journals, sessions and logs never mix.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
import requests

from kiosk.config import KioskConfig, from_dict
from kiosk.hardware.simulators.cards import DEMO_CARDS, DEMO_TRAVEL_DOCUMENTS
from kiosk.hardware.idcard import IdentityCard
from kiosk.services.backend_sim.server import SimServer, serve
from kiosk.services.runtime import Runtime
from kiosk.services.workflow import Produced, Step, Transaction

WANG = DEMO_CARDS[0]  # 王小明: clean record, household head, a car with fines


def config_for(sim_url: str, state_dir: Path, **extra: Any) -> KioskConfig:
    """A demo config against ``sim_url`` with its state (and paper tray) under ``state_dir``."""
    data: dict[str, Any] = {
        "paths": {"state_dir": str(state_dir)},
        "backend": {"url": sim_url, "retries": 1, "backoff_s": 0.05, "read_timeout_s": 5.0},
        "devices": {"a4_printer": {"options": {"output_dir": str(state_dir.parent / "paper_tray")}}},
    }
    for key, value in extra.items():
        data.setdefault(key, {}).update(value)
    return from_dict(data)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """The backend simulator (in-memory, seeded), live over HTTP for the tests of one module."""
    server = serve("127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimServer]:
    """A second module-wide simulator, for runs that would use up the first one's records."""
    server = serve("127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def runtime(sim: SimServer, tmp_path: Path) -> Iterator[Runtime]:
    """The assembled services (simulated devices) against the module's simulator."""
    rt = Runtime.from_config(config_for(sim.url, tmp_path / "state"))
    try:
        yield rt
    finally:
        rt.stop()


def sim_pay(sim_url: str, order_id: str) -> None:
    """The resident's phone pays the order (simulator-only endpoint)."""
    r = requests.post(f"{sim_url}/api/v1/sim/payments/{order_id}/pay", timeout=5)
    r.raise_for_status()


def sim_effects(sim_url: str) -> list[dict[str, Any]]:
    """The simulator's side-effect log."""
    r = requests.get(f"{sim_url}/api/v1/sim/effects", timeout=5)
    r.raise_for_status()
    return r.json()["effects"] if isinstance(r.json(), dict) else r.json()


def card_for(item: Any) -> IdentityCard:
    """The demo document that passes ``item``'s identify step."""
    from kiosk.hardware.simulators.cards import card_by_number

    holder = HAPPY.get(item.id, (None, {}))[0]
    if holder:
        return card_by_number(holder)
    if item.identity == "travel_document":
        kind = "passport" if item.id == "S09" else "permit"
        return next(d.holder for d in DEMO_TRAVEL_DOCUMENTS if d.holder.card_type == kind)
    return WANG


# Values the type alone cannot guess (formats the backend checks, pairs of dates).
SAMPLES: dict[str, str] = {
    "relative_name": "孙丽", "relative_id_number": "370102198812128906",
    "new_owner_name": "孙丽", "new_owner_id_number": "370102198812128906",
    "tenant_name": "孙丽", "tenant_id_number": "370102198812128906",
    "id_number": "370104199001013459", "name": "张伟",
    "vaccine_cert_number": "YM2024000123", "insurance_policy_number": "PDAA202437010000001234",
    "lease_contract_number": "ZL202401050001", "birth_certificate_number": "Q370000002",
    "frame_number": "YD2024A0012345", "other_plate": "鲁B6M338", "verification_code": "ABCD2345EFGH6789",
    "property_cert_number": "鲁(2021)济南市不动产权第0067890号",
}

# Per item: whose document passes its rules (seeded in the simulator) and values that differ
# from the samples. Each resident exists in the simulator's seed for exactly such a case.
LI_XIUYING, SUN_LI, LIU_FANG = "370103196208082347", "370102198812128906", "410105197805204568"
ZHANG_WEI, CHEN_JIE, WANG_SIQI = "370104199001013459", "370112199511115674", "370102200002296780"
ZHAO_GUOQIANG = "370103195507127897"
HAPPY: dict[str, tuple[str | None, dict[str, str]]] = {
    "H03": (LI_XIUYING, {"deceased_name": "张建国", "deceased_id_number": "370103195604201315"}),
    "H04": (LI_XIUYING, {}),
    "H08": (None, {"subject_name": "王子轩", "subject_id_number": "370102201306010117", "new_ethnicity": "03"}),
    "H10": (None, {"child_name": "王小宝"}),
    "H12": (CHEN_JIE, {}),  # an expired card is what renewal is for
    "H18": (SUN_LI, {}),
    "H19": (LIU_FANG, {"address": "山东省济南市历下区文化东路50号2单元301室"}),
    "H20": (LIU_FANG, {}),
    "H21": (LIU_FANG, {}),
    "H22": (LIU_FANG, {}),
    "S04": (LI_XIUYING, {}),
    "T02": (None, {"violation": "WF0001"}),  # fine only; the other one carries points
    "T09": (SUN_LI, {"exam_number": "3701022026110002",
                     "exam_date": (dt.date.today() - dt.timedelta(days=10)).isoformat()}),
    "T12": (WANG_SIQI, {"vin": "LFV2A21K6R3045678", "invoice_number": "24370000888888"}),
    "T13": (SUN_LI, {}),
    "T18": (ZHANG_WEI, {}),
    "E01": (None, {"endorsement_type": "1B", "destination": "HK"}),
    "E03": (SUN_LI, {"document_type": "tw_permit"}),
    "H15": (None, {"id_number": ZHAO_GUOQIANG, "name": "赵国强"}),
    "S03": (None, {"dog_name": "旺财", "color": "黄色"}),
    "S05": (None, {"invoice_number": "24370000123456"}),
    "S09": (None, {"stay_from": dt.date.today().isoformat(),
                   "stay_to": (dt.date.today() + dt.timedelta(days=7)).isoformat()}),
    "T10": (None, {"plate": "鲁AD12345"}),
    "E08": (LI_XIUYING, {}),
    "E09": (SUN_LI, {}),
}


def _date_between(spec: Any) -> str:
    from kiosk.services.catalog import resolve_date

    today = dt.date.today()
    lo = resolve_date(spec.min_date, today) if spec.min_date else None
    hi = resolve_date(spec.max_date, today) if spec.max_date else None
    if lo and hi:
        day = lo + (hi - lo) / 2
    elif lo:
        day = max(lo, today) + dt.timedelta(days=1) if lo >= today else lo + dt.timedelta(days=1)
    elif hi:
        day = min(hi, today) - dt.timedelta(days=1)
    else:
        day = today - dt.timedelta(days=1)
    return day.isoformat()


def sample_value(txn: Transaction, spec: Any) -> str:
    """A valid value for one field of ``txn``'s item."""
    if spec.name in SAMPLES:
        return SAMPLES[spec.name]
    if spec.type == "choice":
        return spec.choices[0].value
    if spec.type == "lookup":
        return str(txn.options(spec.name)[0]["value"])
    if spec.type == "phone":
        return "13800138000"
    if spec.type == "digits":
        return "1234567890123456"[: max(spec.min_len or 8, 8)][: spec.max_len or 16]
    if spec.type == "date":
        return _date_between(spec)
    if spec.type == "plate":
        return "鲁A12345"
    if spec.type == "id_number":
        return "370102198812128906"
    if spec.type == "number":
        return str(int(spec.min_value or 0) + 1000)
    return "济南市历下区泉城路一百八十八号"


def happy_values(txn: Transaction, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Form values for the item's happy path."""
    preset = HAPPY.get(txn.item.id, (None, {}))[1]
    values = {spec.name: preset.get(spec.name) or sample_value(txn, spec)
              for spec in txn.item.fields if spec.required}
    values.update(overrides or {})
    return values


def drive(txn: Transaction, sim_url: str, *, card: IdentityCard | None = None,
          values: Mapping[str, str] | None = None, until: Step = Step.DONE) -> Produced | None:
    """Run ``txn`` along its happy path (paying through the simulator) up to ``until``."""
    produced = None
    while txn.step is not Step.DONE and txn.step is not until:
        step = txn.step
        if step is Step.IDENTIFY:
            txn.identify(card or card_for(txn.item))
        elif step is Step.FACE:
            txn.face_check(None)
        elif step is Step.FORM:
            txn.submit_form(happy_values(txn, values))
        elif step is Step.CONFIRM:
            txn.confirm()
        elif step is Step.PAY:
            order = txn.start_payment()
            sim_pay(sim_url, order["order_id"])
            txn.poll_payment()
        elif step is Step.PRODUCE:
            produced = txn.produce()
    return produced


@pytest.fixture(scope="session")
def flows() -> Any:
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    import types

    return types.SimpleNamespace(config_for=config_for, drive=drive, happy_values=happy_values,
                                 sim_pay=sim_pay, sim_effects=sim_effects, card_for=card_for)
