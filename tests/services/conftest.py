"""Fixtures for the workflow, recovery and privacy tests: a live backend simulator and a runtime.

The simulator runs in this process on a free loopback port (started here, stopped here);
each test gets its own state folder, so journals, sessions and logs never mix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
import requests

from kiosk.demo import people
from kiosk.config import KioskConfig, from_dict
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.hardware.idcard import IdentityCard
from kiosk.backend_sim.server import SimServer
from kiosk.services.runtime import Runtime
from kiosk.services.workflow.records import Produced
from kiosk.services.workflow.steps import Step
from kiosk.services.workflow.transaction import Transaction

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
    """The demo document that passes ``item``'s identify step (kiosk.demo.people decides)."""
    return people.card_for(item)


def happy_values(txn: Transaction, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Form values for the item's happy path (the same data the UI demo's resident types)."""
    return people.happy_values(txn.item, txn.options, overrides)


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
