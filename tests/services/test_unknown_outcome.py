"""A paid service is never lost: an operation whose answer does not come back stays unknown until the backend says.

The backend simulator runs in this process over real HTTP; its fault knobs lose answers
after the operation was done (``timeout`` stalls past the kiosk's read timeout,
``lose_answers`` drops the connection), or drop requests before anything happens (``down``).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from werkzeug.serving import make_server

from kiosk.config import DEMO_HMAC_SECRET
from kiosk.errors import BackendRejected, OutcomeUnknown
from kiosk.hardware.simulators.cards import card_by_number
from kiosk.services import journal as J
from kiosk.services import signing
from kiosk.services.metrics import KioskMetrics
from kiosk.services.runtime import Runtime
from kiosk.services.workflow.payment import refund
from kiosk.services.workflow.steps import Outcome, Step

S = Step
LI = card_by_number("370103196208082347")  # an H13 of her own: 20 CNY, a slip and a receipt
WANG = card_by_number("37010219850315123X")
PAID_ITEM = "H13"


def faults(sim: Any, **knobs: Any) -> None:
    requests.post(f"{sim.url}/api/v1/sim/faults", json=knobs, timeout=5).raise_for_status()


def effects(sim: Any) -> list[dict[str, Any]]:
    return requests.get(f"{sim.url}/api/v1/sim/effects", timeout=5).json()


def kinds_for(sim: Any, order_id: str) -> list[str]:
    return sorted(e["kind"] for e in effects(sim) if e["reference"] == order_id)


def entries(rt: Runtime, txn_id: str) -> dict[str, J.Entry]:
    return {e.kind: e for e in rt.journal.entries(txn_id)}


@pytest.fixture
def make_runtime(tmp_path: Path, flows: Any) -> Iterator[Callable[..., Runtime]]:
    """``make_runtime(url, **backend_overrides)``: a runtime on ``tmp_path/state`` (stopped after the test)."""
    made: list[Runtime] = []

    def make(url: str, **backend: Any) -> Runtime:
        rt = Runtime.from_config(flows.config_for(url, tmp_path / "state", backend=backend))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()


def test_a_paid_operation_whose_answers_time_out_is_asked_again_until_it_is_delivered(fresh_sim, make_runtime,
                                                                                        flows):
    # The issue as reproduced: H13's operation is done, but its answer comes after the kiosk's read
    # timeout, four times in a row (more than the adapter's retries and the old extra try together).
    rt = make_runtime(fresh_sim.url, read_timeout_s=0.3, retries=1, backoff_s=0.01, unknown_outcome_s=30)
    txn = rt.engine.start(PAID_ITEM)
    flows.drive(txn, fresh_sim.url, card=LI, until=S.PRODUCE)
    order_id = txn.order["order_id"]
    faults(fresh_sim, fail_next=4, mode="timeout", timeout_s=0.8)
    produced = txn.produce()
    assert (txn.outcome, txn.reason) == (Outcome.COMPLETED, "")
    assert produced.receipts and produced.reference
    assert entries(rt, txn.id)[J.OPERATE].state == J.DONE and J.PAY_REFUND not in entries(rt, txn.id)
    # One charge, consumed once by one operation, never refunded.
    assert kinds_for(fresh_sim, order_id) == ["payment_order", "payment_paid"]
    assert [e["kind"] for e in effects(fresh_sim)].count("operation") == 1
    with fresh_sim.app.db.lock:
        row = fresh_sim.app.db.conn.execute("SELECT status, consumed_by FROM orders WHERE order_id = ?",
                                            (order_id,)).fetchone()
    assert row["status"] == "paid" and row["consumed_by"] == produced.reference
    txn.finish()


def test_an_outcome_still_unknown_at_the_deadline_stays_open_and_the_reconciler_prints_the_slip(
        fresh_sim, make_runtime, flows):
    rt = make_runtime(fresh_sim.url, retries=1, backoff_s=0.01, unknown_outcome_s=1.5)
    metrics = KioskMetrics("JN-DEMO-0001")
    rt.attach_metrics(metrics)
    printer = rt.devices.get("receipt_printer")
    txn = rt.engine.start(PAID_ITEM)
    flows.drive(txn, fresh_sim.url, card=LI, until=S.PRODUCE)
    order_id = txn.order["order_id"]
    faults(fresh_sim, lose_answers_of="id_card_damaged_replacement", lose_answers=-1)
    with pytest.raises(OutcomeUnknown) as exc:
        txn.produce()
    assert (txn.outcome, txn.reason) == (Outcome.FAILED, "outcome_unknown")
    # The resident reads a reference number and where to collect the slip, in Chinese and in English.
    reference = txn.kiosk_reference
    assert reference.startswith("JN-DEMO-0001-") and exc.value.reference == reference
    assert reference in exc.value.message("zh_CN") and reference in exc.value.message("en")
    assert "服务窗口" in exc.value.where_zh and "counter" in exc.value.where_en
    operate = entries(rt, txn.id)[J.OPERATE]
    assert operate.state == J.BEGUN and operate.refs["outcome"] == "unknown"  # the journal keeps it open
    assert J.PAY_REFUND not in entries(rt, txn.id)  # no refund asked for: it may well have happened
    assert kinds_for(fresh_sim, order_id) == ["payment_order", "payment_paid"]
    assert b"kiosk_paid_undelivered_total 1.0" in metrics.exposition()
    txn.finish()
    assert printer.jobs == []

    faults(fresh_sim, reset=True)  # the backend answers again
    [action] = rt.reconcile()
    assert action.txn_id == txn.id and action.reference == reference
    assert action.printed == ["receipt"] and action.refunded == ""
    assert "operate_confirmed" in action.actions and "receipt_printed" in action.actions
    assert len(printer.jobs) == 1 and reference.encode() in printer.jobs[0]
    settled = entries(rt, txn.id)
    assert settled[J.OPERATE].state == J.DONE and settled[J.PRINT_RECEIPT].state == J.DONE
    assert rt.reconcile() == []  # settled once
    assert kinds_for(fresh_sim, order_id) == ["payment_order", "payment_paid"]  # never refunded


def test_an_unknown_outcome_waits_while_a_resident_is_at_the_kiosk(fresh_sim, make_runtime, flows):
    rt = make_runtime(fresh_sim.url, retries=0, backoff_s=0.01, unknown_outcome_s=1.0)
    gone = rt.engine.start(PAID_ITEM)
    flows.drive(gone, fresh_sim.url, card=LI, until=S.PRODUCE)
    faults(fresh_sim, lose_answers_of="id_card_damaged_replacement", lose_answers=-1)
    with pytest.raises(OutcomeUnknown):
        gone.produce()
    gone.finish()
    faults(fresh_sim, reset=True)
    here = rt.engine.start("H01")
    flows.drive(here, fresh_sim.url, card=WANG, until=S.CONFIRM)
    assert rt.reconcile() == []  # the slip is not this resident's to take
    here.finish()
    [action] = rt.reconcile()
    assert action.printed == ["receipt"]


def test_recovery_refunds_only_once_the_backend_says_the_operation_did_not_happen(tmp_path, fresh_sim,
                                                                                   make_runtime, flows):
    rt = make_runtime(fresh_sim.url, retries=1, backoff_s=0.01, unknown_outcome_s=1.0)
    txn = rt.engine.start(PAID_ITEM)
    flows.drive(txn, fresh_sim.url, card=LI, until=S.PRODUCE)
    order_id = txn.order["order_id"]
    faults(fresh_sim, fail_next=1000, mode="down")  # every request dropped before anything is done
    with pytest.raises(OutcomeUnknown):
        txn.produce()
    assert txn.reason == "outcome_unknown"
    txn.finish()
    rt.stop()
    # Still unknown to the kiosk: nothing is refunded while the backend cannot say.
    assert kinds_for(fresh_sim, order_id) == ["payment_order", "payment_paid"]

    still_down = make_runtime(fresh_sim.url, retries=0, backoff_s=0.01)
    [postponed] = still_down.recovered
    assert [a for a in postponed.actions if a.startswith("postponed:")] and postponed.refunded == ""
    still_down.stop()
    assert kinds_for(fresh_sim, order_id) == ["payment_order", "payment_paid"]

    faults(fresh_sim, reset=True)
    again = make_runtime(fresh_sim.url, retries=0)
    [action] = again.recovered
    assert "operate_not_performed" in action.actions and action.refunded == order_id and action.printed == []
    assert kinds_for(fresh_sim, order_id) == ["payment_order", "payment_paid", "payment_refund"]
    assert [e["kind"] for e in effects(fresh_sim)].count("operation") == 0
    assert entries(again, txn.id)[J.OPERATE].state == J.FAILED
    # The backend closed the key: the request, were it still on its way, can no longer take effect.
    assert again.backend.outcome(f"{txn.id}-{J.OPERATE}-0")["outcome"] == "not_performed"


# --- retries decided by type, in one place ------------------------------------------------------------------
class FakeBackend:
    """A signed WSGI backend: /health answers ok, every operation gets ``answer``; counts operation hits."""

    def __init__(self, status: int, body: bytes) -> None:
        self.hits = 0
        self.status, self.body = status, body
        self._httpd = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"].endswith("/health"):
            status, body = 200, b'{"status":"ok","time":"2026-01-01T00:00:00+08:00","version":"fake"}'
        else:
            self.hits += 1
            status, body = self.status, self.body
        headers = [("Content-Type", "application/json"),
                   *signing.sign_response(DEMO_HMAC_SECRET.encode(), status, environ.get("HTTP_X_NONCE", ""),
                                          body).items()]
        start_response(f"{status} X", headers)
        return [body]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def fake_backend() -> Iterator[Callable[[int, bytes], FakeBackend]]:
    made: list[FakeBackend] = []

    def make(status: int, body: bytes) -> FakeBackend:
        made.append(FakeBackend(status, body))
        return made[-1]

    yield make
    for fb in made:
        fb.stop()


def _to_produce(rt: Runtime) -> Any:
    txn = rt.engine.start("H01")
    txn.identify(WANG)
    txn.submit_form({"purpose": "employment"})
    txn.confirm()
    return txn


def test_a_revoked_terminal_is_not_asked_again(make_runtime, fake_backend):
    revoked = fake_backend(403, b'{"error":{"code":"terminal_revoked","message_zh":"\xe5\x81\x9c","message_en":"revoked"}}')
    rt = make_runtime(revoked.url, retries=2, backoff_s=0.01)
    txn = _to_produce(rt)
    with pytest.raises(BackendRejected) as exc:
        txn.produce()
    assert exc.value.code == "terminal_revoked" and revoked.hits == 1
    assert (txn.outcome, txn.reason) == (Outcome.FAILED, "terminal_revoked")
    assert entries(rt, txn.id)[J.OPERATE].state == J.FAILED  # the backend said no before doing anything


def test_the_workflow_does_not_stack_tries_on_the_adapters(make_runtime, fake_backend):
    down = fake_backend(503, b'{"error":{"code":"unavailable","message_zh":"\xe5\x81\x9c","message_en":"down"}}')
    rt = make_runtime(down.url, retries=2, backoff_s=0.01, unknown_outcome_s=0.5)
    calls: list[dict[str, Any]] = []
    operate = rt.backend.operate

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return operate(*args, **kwargs)

    rt.engine.backend.operate = counted
    txn = _to_produce(rt)
    with pytest.raises(OutcomeUnknown):
        txn.produce()
    # One call: how often to ask again is the adapter's to decide, bounded by backend.unknown_outcome_s.
    assert len(calls) == 1 and calls[0]["until"] is not None
    assert down.hits >= 1
    assert (txn.outcome, txn.reason) == (Outcome.FAILED, "outcome_unknown")


# --- metrics ------------------------------------------------------------------------------------------------
def test_a_refund_that_fails_is_counted_for_the_operator(fresh_sim, make_runtime, flows):
    rt = make_runtime(fresh_sim.url, retries=0, backoff_s=0.01)
    metrics = KioskMetrics("JN-DEMO-0001")
    assert b"kiosk_refund_failed_total 0.0" in metrics.exposition()  # there from the start: the first case counts
    rt.attach_metrics(metrics)
    txn = rt.engine.start(PAID_ITEM)
    flows.drive(txn, fresh_sim.url, card=LI, until=S.PRODUCE)
    faults(fresh_sim, fail_next=5, mode="error")
    assert refund(rt.engine, txn.ref, txn.order["order_id"]) is False
    assert b"kiosk_refund_failed_total 1.0" in metrics.exposition()
    assert entries(rt, txn.id)[J.PAY_REFUND].state == J.BEGUN  # asked again by the next recovery
    faults(fresh_sim, reset=True)
    txn.cancel()
