"""Crash recovery: SIGKILL a kiosk process at each journal point of H01 and of a paid flow.

A child process (this file run as a script) runs the flow against a live simulator and
kills itself with SIGKILL right before or right after its N-th journal write; the hook is
set through an environment variable that only this script reads (product code knows
nothing of it). Then a fresh process builds the runtime, which runs ``recover()``, and
reprints whatever the card holder is owed. The simulator's effect log must show each side
effect exactly once, nobody charged without the service (or charged twice), and the
document still obtainable.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

KILL_ENV = "KIOSK_TEST_KILL_AT"  # "after:N" | "before:N"; read only by this script
WANG_ID = "37010219850315123X"
PAID_ITEM = "H13"  # ID card replacement (damaged): a fixed 20 CNY fee, a slip and a payment receipt


# --- the child process ---------------------------------------------------------------
def _hook_journal(journal: Any, spec: str, writes: list[str]) -> None:
    when, _, n = spec.partition(":")
    target = int(n or 0)
    for name in ("begin", "complete", "fail", "record", "resolve"):
        original = getattr(journal, name)

        def wrapped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            writes.append(_name)
            index = len(writes)
            if when == "before" and index == target:
                os.kill(os.getpid(), signal.SIGKILL)
            result = _original(*args, **kwargs)
            if when == "after" and index == target:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(journal, name, wrapped)


def _config(state_dir: str, sim_url: str) -> Any:
    from kiosk.config import from_dict

    return from_dict({"paths": {"state_dir": state_dir},
                      "backend": {"url": sim_url, "retries": 1, "backoff_s": 0.05},
                      "devices": {"a4_printer": {"options": {"output_dir": str(Path(state_dir).parent / "tray")}}}})


def _child_run(state_dir: str, sim_url: str, item_id: str) -> list[str]:
    """Run one flow as the kiosk would; the journal hook may SIGKILL this process on the way."""
    import requests

    from kiosk.hardware.simulators.cards import card_by_number
    from kiosk.services.runtime import Runtime
    from kiosk.services.workflow.steps import Step

    rt = Runtime.from_config(_config(state_dir, sim_url), recover_now=False)
    writes: list[str] = []
    _hook_journal(rt.journal, os.environ.get(KILL_ENV, ""), writes)
    txn = rt.engine.start(item_id)
    txn.identify(card_by_number(WANG_ID))
    values = {"purpose": "employment"} if item_id == "H01" else {"damage": "chip", "delivery": "counter",
                                                                 "phone": "13800138000"}
    txn.submit_form(values)
    txn.confirm()
    if txn.step is Step.PAY:
        order = txn.start_payment()
        requests.post(f"{sim_url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=5).raise_for_status()
        txn.poll_payment()
    txn.produce()
    txn.finish()
    rt.stop()
    return writes


def _fork_server() -> int:
    """Import and warm everything once, then fork one kiosk process per scenario read from stdin.

    Each line is ``{"state", "sim", "item", "kill"}``; the answer line is the child's exit
    status (negative: killed by that signal) and the journal writes it made when it lived.
    Forking a warmed process keeps dozens of crash runs within seconds; each child is
    still a separate process that dies by SIGKILL with its files and SQLite handles open.
    """
    import tempfile

    from kiosk.services.backend import api_spec
    from kiosk.services.runtime import Runtime  # noqa: F401  (imported before forking)
    from print_templates.documents import render_pdf
    from print_templates.receipts import render_receipt  # noqa: F401

    api_spec()
    with tempfile.TemporaryDirectory() as tmp:  # loads and subsets the CJK font once
        render_pdf({"document_id": "D0", "doc_type": "household_certificate", "verification_code": "X",
                    "title_zh": "预热", "title_en": "Warm-up", "issued_at": "2026-01-01T00:00:00",
                    "content": {}, "qr_payload": "{}", "signature": ""}, Path(tmp) / "w.pdf",
                   terminal_id="WARM")
    for line in sys.stdin:
        job = json.loads(line)
        out = Path(job["state"]).parent / "writes.json"
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if job["kill"]:
                    os.environ[KILL_ENV] = job["kill"]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(_child_run(job["state"], job["sim"], job["item"])))
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        writes = json.loads(out.read_text()) if out.exists() else None
        print(json.dumps({"returncode": code, "writes": writes}), flush=True)
    return 0


def _child_recover(jobs: list[tuple[str, str]]) -> int:
    from kiosk.hardware.simulators.cards import card_by_number
    from kiosk.services.runtime import Runtime

    card = card_by_number(WANG_ID)
    out = []
    for state_dir, sim_url in jobs:
        rt = Runtime.from_config(_config(state_dir, sim_url))  # runs recover()
        owed = rt.engine.pending_reprints(card)
        produced = rt.engine.reprint(card)
        out.append({
            "actions": [a.actions for a in rt.recovered],
            "owed": [p.kind for p in owed],
            "reprinted_documents": len(produced.documents),
            "reprinted_receipts": len(produced.receipts),
            "still_owed": len(rt.engine.pending_reprints(card)),
            "entries": [{"kind": e.kind, "state": e.state, "refs": dict(e.refs), "key": e.key}
                        for e in rt.journal.entries()],
            "leftovers": sorted(str(p.relative_to(state_dir)) for sub in ("sessions", "spool")
                                for p in (Path(state_dir) / sub).glob("*")),
        })
        rt.stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    if sys.argv[1] == "fork-server":
        sys.exit(_fork_server())
    sys.exit(_child_recover(list(zip(sys.argv[2::2], sys.argv[3::2]))))


# --- the test ------------------------------------------------------------------------
import pytest  # noqa: E402  (the child above must not need pytest)
import requests  # noqa: E402

from kiosk.services.backend import BackendClient  # noqa: E402
from kiosk.backend_sim.server import serve  # noqa: E402

CHILD = Path(__file__).resolve()


def _spawn(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(KILL_ENV, None)
    return subprocess.run([sys.executable, str(CHILD), *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=180)


class ForkServer:
    """One warmed fork server process (this file, ``fork-server``), fed one job at a time."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.pop(KILL_ENV, None)
        self.proc = subprocess.Popen([sys.executable, str(CHILD), "fork-server"], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, job: dict[str, str]) -> dict[str, Any]:
        """Fork one kiosk process for ``job`` and return how it ended."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("{"), self.close()
        return json.loads(line)

    def close(self) -> str:
        """Stop the server; returns the end of its stderr (children's tracebacks)."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        err = self.proc.stderr.read()
        self.proc.wait(timeout=30)
        return err[-3000:]


def _effects(url: str) -> list[dict[str, Any]]:
    body = requests.get(f"{url}/api/v1/sim/effects", timeout=5).json()
    return body["effects"] if isinstance(body, dict) else body


def _kill_points(writes: list[str]) -> list[str]:
    points = []
    for index, name in enumerate(writes, start=1):
        if name in ("complete", "record"):  # the effect happened, its record did not
            points.append(f"before:{index}")
        points.append(f"after:{index}")
    return points


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every crash scenario of both flows, then one recovery process over all of them."""
    base = tmp_path_factory.mktemp("crash")
    sims: list[Any] = []
    try:
        def flow(item_id: str) -> tuple[list[str], list[dict[str, Any]]]:
            # One fork server per flow: a clean run counts the journal writes, then one
            # crash run per kill point, each against its own fresh simulator.
            server = ForkServer()
            try:
                sim = serve("127.0.0.1", 0)
                sims.append(sim)
                clean = server.run({"state": str(base / f"count-{item_id}" / "state"), "sim": sim.url,
                                    "item": item_id, "kill": ""})
                assert clean["returncode"] == 0, server.close()
                runs = []
                for point in _kill_points(clean["writes"]):
                    sim = serve("127.0.0.1", 0)
                    sims.append(sim)
                    state = base / f"{item_id}-{point.replace(':', '-')}" / "state"
                    answer = server.run({"state": str(state), "sim": sim.url, "item": item_id, "kill": point})
                    runs.append({"item": item_id, "point": point, "sim": sim, "state": state,
                                 "returncode": answer["returncode"]})
            finally:
                stderr = server.close()
            for r in runs:
                r["stderr"] = stderr
            return clean["writes"], runs

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = dict(zip(("H01", PAID_ITEM), pool.map(flow, ("H01", PAID_ITEM))))
        counts = {item_id: writes for item_id, (writes, _) in results.items()}
        scenarios = [run for _, runs in results.values() for run in runs]

        args = [a for s in scenarios for a in (str(s["state"]), s["sim"].url)]
        recovered = _spawn(["recover", *args])
        assert recovered.returncode == 0, recovered.stderr[-3000:]
        for s, report in zip(scenarios, json.loads(recovered.stdout.strip().splitlines()[-1])):
            s["report"] = report
            s["effects"] = _effects(s["sim"].url)
            client = BackendClient.from_config(_config(str(s["state"]), s["sim"].url))
            s["client"] = client
            order_ids = [e["reference"] for e in s["effects"] if e["kind"] == "payment_order"]
            s["orders"] = [o["status"] for o in client.reconcile(order_ids)["orders"]] if order_ids else []
        yield {"counts": counts, "scenarios": scenarios}
    finally:
        # Each stop waits out the server's poll interval: stop them side by side.
        with ThreadPoolExecutor(max_workers=len(sims) or 1) as pool:
            list(pool.map(lambda sim: sim.stop(), sims))


def _by_point(crashes: dict[str, Any], item_id: str) -> list[dict[str, Any]]:
    return [s for s in crashes["scenarios"] if s["item"] == item_id]


def test_flows_journal_every_side_effect_before_and_after(crashes):
    assert crashes["counts"]["H01"] == ["begin", "complete"] * 3  # operate, A4, receipt
    # create order, payment seen, operate, receipt
    assert crashes["counts"][PAID_ITEM] == ["begin", "complete", "record", "begin", "complete",
                                            "begin", "complete"]


def test_every_child_died_by_sigkill_at_its_point(crashes):
    for s in crashes["scenarios"]:
        assert s["returncode"] == -signal.SIGKILL, (s["item"], s["point"], s["stderr"])


def test_each_side_effect_happened_exactly_once(crashes):
    for s in crashes["scenarios"]:
        keys = [(e["kind"], e["idempotency_key"]) for e in s["effects"] if e["kind"] != "payment_paid"]
        assert len(keys) == len(set(keys)), (s["point"], keys)
        kinds = [e["kind"] for e in s["effects"]]
        assert kinds.count("operation") <= 1 and kinds.count("payment_order") <= 1, (s["point"], kinds)
        assert kinds.count("payment_paid") <= 1 and kinds.count("payment_refund") <= 1


def test_h01_document_is_issued_once_and_still_obtainable(crashes):
    for s in _by_point(crashes, "H01"):
        kinds = [e["kind"] for e in s["effects"]]
        assert kinds.count("operation") == 1, (s["point"], kinds)  # operate is the first journal write
        report = s["report"]
        [operate] = [e for e in report["entries"] if e["kind"] == "operate"]
        assert operate["state"] == "done", (s["point"], report)
        doc_id = operate["refs"]["document_id"]
        printed = [e for e in report["entries"] if e["kind"] == "print_a4" and e["state"] == "done"
                   and e["refs"]["document_id"] == doc_id]
        # Printed in the child before it died, or owed and reprinted once the card came back.
        assert printed, (s["point"], report)
        assert report["still_owed"] == 0
        a4_done_in_child = any(e["state"] == "done" and "of_key" not in e["refs"] for e in printed)
        assert a4_done_in_child or report["reprinted_documents"] == 1, (s["point"], report)
        # Obtainable from the backend by the plain ID hash the reprint API takes.
        got = s["client"].fetch_document(doc_id, WANG_ID)
        assert got["document_id"] == doc_id
        assert report["leftovers"] == []


def test_paid_flow_never_charges_without_the_service(crashes):
    for s in _by_point(crashes, PAID_ITEM):
        kinds = [e["kind"] for e in s["effects"]]
        paid, refunded, operated = (kinds.count(k) for k in ("payment_paid", "payment_refund", "operation"))
        charged = paid - refunded
        assert charged == operated, (s["point"], kinds, s["report"]["actions"])
        # No order is left open, and an order that was paid went to the service (or came back).
        statuses = s["orders"]
        assert all(st in ("cancelled", "paid", "refunded", "expired") for st in statuses), (s["point"], statuses)
        if operated:
            receipts = [e for e in s["report"]["entries"] if e["kind"] == "print_receipt" and e["state"] == "done"]
            assert receipts, (s["point"], s["report"])
        assert s["report"]["still_owed"] == 0 and s["report"]["leftovers"] == []


def test_payment_seen_only_by_reconcile_is_produced(crashes):
    # Killed after the order was created but before the kiosk saw it paid: the resident's
    # phone paid, so recovery must produce (the session survived the crash), not refund.
    before_paid = [s for s in _by_point(crashes, PAID_ITEM) if s["point"] == "before:3"]
    assert before_paid
    kinds = [e["kind"] for e in before_paid[0]["effects"]]
    assert kinds.count("operation") == 1 and "payment_refund" not in kinds
    assert any("late_payment_seen" in a for a in before_paid[0]["report"]["actions"])


def test_late_payment_after_the_kiosk_gave_up_is_refunded(tmp_path, flows):
    from kiosk.services.runtime import Runtime
    from kiosk.services.workflow.steps import Step

    sim = serve("127.0.0.1", 0)
    try:
        rt = Runtime.from_config(flows.config_for(sim.url, tmp_path / "state"))
        txn = rt.engine.start(PAID_ITEM)
        flows.drive(txn, sim.url, until=Step.PAY)
        order = txn.start_payment()
        txn.cancel()
        txn.finish()
        flows.sim_pay(sim.url, order["order_id"])  # the phone paid after the kiosk cancelled
        rt.stop()
        again = Runtime.from_config(flows.config_for(sim.url, tmp_path / "state"))
        assert any("refunded" in a.actions for a in again.recovered)
        assert again.backend.get_order(order["order_id"])["status"] == "refunded"
        again.stop()
        third = Runtime.from_config(flows.config_for(sim.url, tmp_path / "state"))
        assert third.recovered == []  # settled once, not refunded twice
        third.stop()
        kinds = [e["kind"] for e in _effects(sim.url)]
        assert kinds.count("payment_refund") == 1 and "operation" not in kinds
    finally:
        sim.stop()


def test_a_running_kiosk_refunds_a_late_payment_without_touching_open_sessions(runtime, sim, flows):
    from kiosk.services.workflow.steps import Step

    gone = runtime.engine.start(PAID_ITEM)
    flows.drive(gone, sim.url, until=Step.PAY)
    order = gone.start_payment()
    gone.cancel()
    gone.finish()
    open_txn = runtime.engine.start("H01")
    flows.drive(open_txn, sim.url, until=Step.CONFIRM)  # another resident is at the screen
    flows.sim_pay(sim.url, order["order_id"])
    [action] = runtime.reconcile()
    assert action.txn_id == gone.id and "refunded" in action.actions
    assert runtime.reconcile() == []
    assert open_txn.session.folder.exists() and open_txn.session.identity is not None
    assert runtime.backend.get_order(order["order_id"])["status"] == "refunded"
    open_txn.finish()
