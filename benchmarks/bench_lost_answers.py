"""Lost answers and chips that prove themselves: how long a resident waits, what settling costs.

- A paid H13 whose operation answers are all lost (the simulator drops the connection after
  doing it): the resident's wait until the outcome is declared unknown, and how many times
  the kiosk asked, for a few ``backend.unknown_outcome_s``; then the reconciler's settling
  (POST /outcomes, the slip printed).
- The same with the answers stalling past the read timeout (the timeout of issue 11).
- The demo chip reader's read with passive authentication (EF.SOD, hashes, chain).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import requests

from kiosk.demo import people
from kiosk.config import from_dict
from kiosk.errors import OutcomeUnknown
from kiosk.hardware.simulators.cards import card_by_number, travel_document_by_number
from kiosk.hardware.simulators.pcsc import SimChipReader
from kiosk.backend_sim.server import serve
from kiosk.services.runtime import Runtime
from kiosk.services.workflow.steps import Step

LI = card_by_number("370103196208082347")


def _paid_h13(rt: Runtime, url: str):  # type: ignore[no-untyped-def]
    txn = rt.engine.start("H13")
    txn.identify(LI)
    txn.submit_form(people.happy_values(txn.item, txn.options))
    txn.confirm()
    order = txn.start_payment()
    requests.post(f"{url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=5).raise_for_status()
    txn.poll_payment()
    assert txn.step is Step.PRODUCE
    return txn


def _lost(unknown_s: float, knobs: dict[str, object], read_timeout_s: float = 10.0) -> None:
    sim = serve("127.0.0.1", 0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = from_dict({"paths": {"state_dir": str(Path(tmp) / "state")},
                         "backend": {"url": sim.url, "unknown_outcome_s": unknown_s, "read_timeout_s": read_timeout_s},
                         "devices": {"a4_printer": {"options": {"output_dir": str(Path(tmp) / "tray")}}}})
        rt = Runtime.from_config(cfg)
        try:
            txn = _paid_h13(rt, sim.url)
            requests.post(f"{sim.url}/api/v1/sim/faults", json=knobs, timeout=5).raise_for_status()
            started = time.perf_counter()
            try:
                txn.produce()
            except OutcomeUnknown:
                pass
            waited = time.perf_counter() - started
            applied = sum(sim.app.faults.applied().values())
            txn.finish()
            requests.post(f"{sim.url}/api/v1/sim/faults", json={"reset": True}, timeout=5).raise_for_status()
            started = time.perf_counter()
            [action] = rt.reconcile()
            settled = time.perf_counter() - started
            label = ",".join(f"{k}={v}" for k, v in knobs.items() if k != "lose_answers_of")
            print(f"   unknown_outcome_s={unknown_s:<4} {label:<34} outcome {txn.reason:<16} resident waited "
                  f"{waited:5.1f} s, {applied:3d} answers lost/stalled; settled in {settled * 1e3:5.0f} ms "
                  f"({','.join(action.actions)})")
        finally:
            rt.stop()
            sim.stop()


def _chip_reads(n: int = 50) -> None:
    permit = travel_document_by_number("C12345678")
    reader = SimChipReader("pcsc", {"document": permit.document_number})
    access = (permit.document_number, permit.birth_date, permit.expiry_date)
    started = time.perf_counter()
    reader.read_document(*access, timeout=0)  # builds and signs the chip's files once
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(n):
        reader.read_document(*access, timeout=0)
    each = (time.perf_counter() - started) / n
    print(f"   demo chip read with passive authentication: first {first * 1e3:.1f} ms (signs the files), "
          f"then {each * 1e3:.2f} ms each")


def main() -> None:
    """Print the figures."""
    for unknown_s in (2.0, 5.0):
        _lost(unknown_s, {"lose_answers_of": "id_card_damaged_replacement", "lose_answers": -1})
    # The timeout of issue 11: every answer stalls past a 1 s read timeout.
    _lost(3.0, {"fail_next": 1000, "mode": "timeout", "timeout_s": 2.0}, read_timeout_s=1.0)
    _chip_reads()


if __name__ == "__main__":
    main()
