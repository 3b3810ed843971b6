"""Workflow figures: journal writes, one H01 and one paid transaction end to end, recovery, session wipe.

Everything runs against the backend simulator in this process (loopback HTTP, signed)
and simulated devices without delays, so the figures are the kiosk's own overhead plus
the HTTP round trips and PDF rendering it really does.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import requests

from kiosk.config import from_dict
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.services import journal as J
from kiosk.backend_sim.server import serve
from kiosk.services.runtime import Runtime
from kiosk.services.session import Session
from kiosk.services.workflow.recovery import recover
from kiosk.services.workflow.steps import Step

WANG = DEMO_CARDS[0]


def _timed(label: str, fn: Callable[[], Any], n: int) -> None:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    print(f"   {label:<46} median {statistics.median(times) * 1e3:8.1f} ms   "
          f"max {max(times) * 1e3:8.1f} ms   (n={n})")


def _journal(root: Path) -> None:
    j = J.Journal(root / "journal-bench")
    n = 300
    started = time.perf_counter()
    for i in range(n):
        j.begin(f"k{i}", "t", "H01", "produce", J.OPERATE, id_hash="h", refs={"operation": "x"})
        j.complete(f"k{i}", {"document_id": f"D{i}"})
    elapsed = time.perf_counter() - started
    print(f"   {'journal begin+complete (synchronous=FULL)':<46} {n / elapsed:8.0f} /s  "
          f"({elapsed / n * 1e3:.2f} ms per effect)")
    j.close()


def _flow(rt: Runtime, sim_url: str, item_id: str, values: dict[str, str], card: Any = WANG) -> None:
    txn = rt.engine.start(item_id)
    while txn.step is not Step.DONE:
        if txn.step is Step.IDENTIFY:
            txn.identify(card)
        elif txn.step is Step.FORM:
            if txn.item.fields[0].type == "lookup":
                values = {txn.item.fields[0].name: str(txn.options(txn.item.fields[0].name)[0]["value"])}
            txn.submit_form(values)
        elif txn.step is Step.CONFIRM:
            txn.confirm()
        elif txn.step is Step.PAY:
            order = txn.start_payment()
            requests.post(f"{sim_url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=5)
            txn.poll_payment()
        elif txn.step is Step.PRODUCE:
            txn.produce()
    txn.finish()


def main() -> None:
    """Print the workflow's figures."""
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-wf-") as tmp:
        root = Path(tmp)
        _journal(root)
        sim = serve("127.0.0.1", 0)
        try:
            cfg = from_dict({"paths": {"state_dir": str(root / "state")}, "backend": {"url": sim.url},
                             "devices": {"a4_printer": {"options": {"output_dir": str(root / "tray")}}}})
            started = time.perf_counter()
            rt = Runtime.from_config(cfg)
            print(f"   {'Runtime.from_config (catalog, devices, recovery)':<46} "
                  f"{(time.perf_counter() - started) * 1e3:8.1f} ms")
            _timed("H01 identify → certificate PDF + receipt", lambda: _flow(rt, sim.url, "H01",
                                                                             {"purpose": "employment"}), 10)
            # A damaged-card replacement is open once per resident: one run per demo resident it allows.
            payers = iter([c for c in DEMO_CARDS if c.id_number in (
                "37010219850315123X", "370102200002296780", "370103196208082347", "370104199001013459",
                "370103195507127897")])
            _timed("H13 with payment (order, pay, poll, receipt)", lambda: _flow(
                rt, sim.url, "H13", {"damage": "chip", "delivery": "counter", "phone": "13800138000"},
                next(payers)), 5)

            # Recovery over 50 transactions a crash left with an order open.
            for _ in range(50):
                txn = rt.engine.start("H13")
                txn.identify(WANG)
                txn.submit_form({"damage": "chip", "delivery": "counter", "phone": "13800138000"})
                txn.confirm()
                txn.start_payment()
            # A second runtime on the same state folder stands for the process after a crash.
            after_crash = Runtime.from_config(cfg, recover_now=False)
            started = time.perf_counter()
            actions = recover(after_crash.engine)
            print(f"   {'recover() of 50 open orders (reconcile+cancel)':<46} "
                  f"{(time.perf_counter() - started) * 1e3:8.1f} ms   ({len(actions)} settled)")
            after_crash.stop()
            rt.stop()
        finally:
            sim.stop()

        def wipe() -> None:
            s = Session(root / "wipe")
            s.file("document-0.pdf").write_bytes(b"x" * 200_000)
            s.save_resume({"id_number": WANG.id_number})
            s.end("done")

        _timed("session end (shred 200 kB PDF + resume record)", wipe, 20)


if __name__ == "__main__":
    main()
