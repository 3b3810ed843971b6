"""The engine-only soak: the workflow engine, the device simulators and the backend simulator, no Kivy.

The same runtime the kiosk assembles (``Runtime.from_config``, embedded backend simulator), its
transactions driven step by step the way the screens call them: the card laid on the simulated
reader and read, the form filled (a mistyping resident enters a refused value first, then the
right one), the order paid from the "phone" (the simulator's pay endpoint), the documents printed.
A walk-away is the idle timeout's cancel (``cancel("timeout")``); a cancel is the resident's.
"""
from __future__ import annotations

import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import requests

from kiosk.config import KioskConfig, from_dict
from kiosk.demo import people
from kiosk.errors import FieldError, KioskError
from kiosk.services.runtime import Runtime
from kiosk.services.workflow.rules import RETRYABLE_READS
from kiosk.services.workflow.steps import Step
from kiosk.soak import ledger
from kiosk.soak.faults import FaultInjector
from kiosk.soak.plan import ENGINE_BEHAVIOURS, ENGINE_FAULT_KINDS, SessionPlan, plan_sessions, tours
from kiosk.soak.report import SoakResult
from kiosk.soak.sampler import READ_EVERY, rss_reading, sample

log = logging.getLogger(__name__)

READ_TRIES = 3
MAX_STEPS = 20


def soak_config(state_dir: Path, **sections: dict[str, Any]) -> KioskConfig:
    """The demo config with the soak's state folder, short backend timeouts and a paper tray that keeps little."""
    data: dict[str, Any] = {
        "paths": {"state_dir": str(state_dir)},
        "backend": {"read_timeout_s": 3.0, "unknown_outcome_s": 20.0},
        "devices": {"a4_printer": {"options": {"output_dir": str(state_dir / "paper_tray"), "keep": 5}}},
        "upkeep": {"health_interval_s": 10.0},
    }
    for name, values in sections.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(data.get(name, {}).get(key), dict):
                data[name][key] = {**data[name][key], **value}
            else:
                data.setdefault(name, {})[key] = value
    return from_dict(data)


def new_resident(runtime: Any) -> None:
    """The next resident's records as the backend first had them (a fine paid by the last one is owed again).

    The demo knows a handful of people; a station serves thousands, each with their own records.
    Without this the soak's tenth T02 would find WANG's fines all paid and the mix would drift to refusals.
    """
    runtime.sim.app.db.reseed_records()


def top_up(runtime: Any) -> None:
    """The operator's round: paper back in both printers; and the simulators' records of what they printed and
    played (kept for tests to read back, not part of the kiosk) emptied, so they do not count as the kiosk's memory."""
    for name in ("a4_printer", "receipt_printer"):
        printer = runtime.devices.get(name)
        if printer is not None and hasattr(printer, "refill"):
            printer.refill()
    for name, history in (("a4_printer", "jobs"), ("receipt_printer", "jobs"), ("receipt_printer", "_received"),
                          ("speaker", "played")):
        device = runtime.devices.get(name)
        kept = getattr(device, history, None) if device is not None else None
        if isinstance(kept, (list, bytearray)):
            with device._sim_lock:
                del kept[:]


class EngineResident:
    """Does one planned session on the engine, as the screens would call it; returns its outcome."""

    def __init__(self, runtime: Runtime, injector: FaultInjector) -> None:
        self.runtime = runtime
        self.injector = injector
        self.http = requests.Session()
        self.pay_url = f"{runtime.sim.url}/api/v1/sim/payments/{{}}/pay"

    def run(self, plan: SessionPlan) -> str:
        """The session's outcome: the transaction's (completed, failed, refused, cancelled), or unavailable."""
        item = self.runtime.catalog.get(plan.item)
        if item.kind == "guide":
            return "completed"  # the guide screen is the whole visit
        try:
            txn = self.runtime.engine.start(item.id)
        except KioskError as err:
            log.info("soak: %s not admitted: %s", item.id, err.code)
            return "unavailable"
        try:
            self._steps(txn, item, plan)
        except KioskError as err:
            if txn.outcome is None:
                log.info("soak: %s %s left open by %s: cancelled", item.id, txn.step.value, err.code)
                txn.cancel()
        finally:
            self._finish(txn)
        return txn.outcome.value if txn.outcome is not None else "cancelled"

    def _leaves_here(self, plan: SessionPlan, screen: str) -> str:
        """'timeout' or 'cancel' when the planned resident walks away or cancels on ``screen``; else ''."""
        if plan.screen != screen:
            return ""
        return {"walk_away": "timeout", "cancel": "cancel"}.get(plan.behaviour, "")

    def _steps(self, txn: Any, item: Any, plan: SessionPlan) -> None:
        for _ in range(MAX_STEPS):
            step = txn.step
            if step is Step.DONE or txn.outcome is not None:
                return
            screen = {Step.IDENTIFY: "identify", Step.FORM: "form"}.get(step, "")
            leave = self._leaves_here(plan, screen) if screen else ""
            if leave:
                txn.cancel(reason=leave)
                return
            self._do(step, txn, item, plan)
        raise KioskError(f"no end after {MAX_STEPS} steps")

    def _do(self, step: Step, txn: Any, item: Any, plan: SessionPlan) -> None:
        if step is Step.IDENTIFY:
            self._identify(txn, item)
        elif step is Step.FACE:
            txn.face_check(None)
        elif step is Step.FORM:
            if plan.values:
                try:
                    txn.submit_form(people.happy_values(item, txn.options, dict(plan.values)))
                except FieldError:
                    pass  # the complaint beside the field; the resident types it again
                else:
                    raise KioskError(f"{item.id}: the mistyped {plan.values[0][0]} was accepted")
            txn.submit_form(people.happy_values(item, txn.options))
        elif step is Step.CONFIRM:
            txn.confirm()
        elif step is Step.PAY:
            order = txn.start_payment()
            self.http.post(self.pay_url.format(order["order_id"]), timeout=10).raise_for_status()
            txn.poll_payment()
        elif step is Step.PRODUCE:
            txn.produce()
        else:
            raise KioskError(f"no soak action for step {step.value}")

    def _identify(self, txn: Any, item: Any) -> None:
        """Lay the card (or travel document) on its simulated reader and read it; a pulled card is laid again."""
        access = None
        if item.identity == "travel_document":
            document = people.travel_document_for(item)
            self.runtime.devices.get("pcsc").place(document)
            access = (document.document_number, document.birth_date, document.expiry_date)
        for attempt in range(READ_TRIES):
            if item.identity != "travel_document":
                # Laid (again) for each read: after a pull the reader waited its whole timeout for a card that
                # this resident had taken away and never laid back.
                self.runtime.devices.get("id_card").place(people.card_for(item).id_number)
            try:
                txn.identify(access=access)
                return
            except RETRYABLE_READS:
                if attempt == READ_TRIES - 1:
                    raise
            finally:
                if item.identity != "travel_document":
                    self.runtime.devices.get("id_card").remove()

    def _finish(self, txn: Any) -> None:
        try:
            txn.finish()
        except KioskError:
            # Paid, not produced (a fault stopped production): produce, then finish, as the printing screen does.
            try:
                txn.produce()
            except KioskError as err:
                log.info("soak: producing before finishing: %s", err.code)
            txn.finish()


def run(out: Path, sessions: int, seed: int, *, sample_every: int = 100, warmup: int = 100,
        read_every: int = READ_EVERY, progress: Callable[[str], None] = print) -> SoakResult:
    """The engine-only soak of ``sessions`` sessions, its state under ``out``/engine-state (emptied first)."""
    state = out / "engine-state"
    shutil.rmtree(state, ignore_errors=True)
    runtime = Runtime.from_config(soak_config(state, speech={"enabled": False}))
    result = SoakResult(warmup=warmup)
    started = time.monotonic()
    try:
        injector = FaultInjector(runtime)
        resident = EngineResident(runtime, injector)
        plans = plan_sessions(runtime.catalog.items, sessions, seed, kinds=ENGINE_FAULT_KINDS,
                              flagships=[item.id for item in runtime.home_items], behaviours=ENGINE_BEHAVIOURS,
                              tour=warmup if tours(runtime.catalog.items, sessions, warmup, ENGINE_BEHAVIOURS,
                                                  ENGINE_FAULT_KINDS) else 0)
        random.seed(seed)
        result.samples.append(sample(0))
        result.readings.append((0, result.samples[-1].rss_mib))
        for plan in plans:
            new_resident(runtime)
            if plan.fault:
                injector.arm(plan.fault, runtime.catalog.get(plan.item))
            try:
                result.count(resident.run(plan))
            except Exception:  # noqa: BLE001  (anything but a KioskError is a crash: counted, logged, go on)
                result.crashes += 1
                log.exception("soak: session %d (%s) crashed", plan.index, plan.item)
            finally:
                injector.disarm()
            for txn in runtime.engine.active():  # a transaction left open is a resident left stuck
                result.stuck += 1
                log.error("soak: session %d left txn %s open at %s", plan.index, txn.id, txn.step.value)
                try:
                    txn.cancel()
                    txn.finish()
                except KioskError:
                    runtime.engine.forget(txn)
            done = plan.index + 1
            if done % 50 == 0:
                top_up(runtime)
            if done % sample_every == 0 or done == sessions:
                result.samples.append(sample(done))
                result.readings.append((done, result.samples[-1].rss_mib))
                rate = done / (time.monotonic() - started) * 60
                progress(f"soak engine: {done}/{sessions} sessions ({rate:.0f}/min), "
                         f"rss {result.samples[-1].rss_mib:.1f} MiB")
            elif done % read_every == 0:
                result.readings.append((done, rss_reading()))
        runtime.reconcile()  # what the kiosk's reconcile timer does: late payments settled
        counts = injector.counts()
        result.faults = {kind: counts.get(kind, 0) for kind in ENGINE_FAULT_KINDS}
        result.mismatches = ledger.reconcile(runtime.sim.app.db.path, runtime.journal, runtime.config.terminal.id)
    finally:
        runtime.close()
    result.sessions = sessions
    result.seconds = time.monotonic() - started
    return result
