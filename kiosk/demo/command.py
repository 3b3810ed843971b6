"""`kiosk demo`: runs the scripted flows on one simulator and writes summary.json."""
from __future__ import annotations

import argparse
import logging
import shutil
import signal
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig, PathsConfig, load
from kiosk.demo import people
from kiosk.demo.driver import DemoError, UiDriver
from kiosk.demo.flows import DEFAULT_FLOW, FlowScript
from kiosk.demo.resident import Resident
from kiosk.demo.summary import FlowRecord, Summary, recovered_entries
from kiosk.errors import ConfigError

log = logging.getLogger(__name__)


def demo_config(cfg: KioskConfig, state_dir: Path) -> KioskConfig:
    """The config with a fresh state folder and the card still in the resident's hand."""
    if cfg.profile == "production":
        raise ConfigError("the demo drives simulators; it does not run on the production profile",
                          key="profile", value=cfg.profile)
    devices = dict(cfg.devices)
    card = devices["id_card"]
    devices["id_card"] = card.model_copy(update={"options": {**card.options, "card_on_reader": False}})
    a4 = devices["a4_printer"]
    devices["a4_printer"] = a4.model_copy(update={"options": {"output_dir": str(state_dir / "paper_tray"),
                                                              **a4.options}})
    return cfg.model_copy(update={"paths": PathsConfig(state_dir=str(state_dir)), "devices": devices})


def _stop_demo(signum: int, _frame: Any) -> None:
    log.info("demo stopped by signal %d", signum)
    raise SystemExit(128 + signum)


def run_demo(cfg: KioskConfig, out: Path, flows: list[str], *, all_items: bool = False,
             shots: str = "all", state_dir: Path | None = None) -> int:
    """Run the flows (FLOW_SYNTAX; none: DEFAULT_FLOW) headless on one simulator, write ``out``/summary.json.

    ``state_dir`` keeps the journal and the embedded simulator's database there (a fresh
    temporary folder otherwise, removed at the end); the run starts with recovery, as
    `kiosk run` does, and summary.json's ``recovered`` says what it finished. Returns 0
    when every flow passed (:func:`flow_passed`), 1 otherwise. Raises ConfigError for a
    bad flow before anything starts.
    """
    from kiosk.services.catalog import Catalog

    scripts = [FlowScript.parse(f) for f in flows] or [FlowScript(DEFAULT_FLOW)]
    catalog = Catalog.load()
    for script in scripts:
        script.check(catalog.get(script.item))  # UnknownItemError, or an option the item does not take
    out.mkdir(parents=True, exist_ok=True)
    keep = state_dir is not None
    state = Path(state_dir) if keep else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    # Our own handlers before SDL starts: SDL would otherwise turn SIGTERM into a window
    # close, which the kiosk refuses, and a stopped demo would run on. Unwinding runs the
    # clean-ups below (the state folder holds the simulator's residents).
    previous = {sig: signal.signal(sig, _stop_demo) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scripts = _run_flows(demo_config(cfg, state), None if all_items else scripts, out, shots, summary)
    finally:
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    passed = [flow_passed(s, r) for s, r in zip(scripts, summary.flows)]
    return 0 if passed and all(passed) else 1


def _run_flows(cfg: KioskConfig, scripts: list[FlowScript] | None, out: Path, shots: str,
               summary: Summary) -> list[FlowScript]:
    """Start the kiosk offscreen and run ``scripts`` (None: every item), adding to ``summary``; the scripts run."""
    from kiosk.app import KioskApp, build_runtime, prepare_kivy

    prepare_kivy(cfg.ui, headless=True)
    runtime = build_runtime(cfg)  # runs start-up recovery
    try:
        summary.recovered = recovered_entries(runtime, out)
        if scripts is None:
            scripts = [FlowScript(i) for i in people.run_order([it.id for it in runtime.catalog.items])]
        app = KioskApp(runtime, cfg)
        driver = UiDriver(app)
        driver.start()
        try:
            driver.wait_until(lambda: app.availability > 0, "the first availability check")
            driver.wait_seconds(0.5)
            resident = Resident(driver, runtime, out, shots=shots)
            for script in scripts:
                record = resident.run(script)
                summary.flows.append(record)
                print(f"kiosk demo: {script.item}{':' + record.person if record.person else ''}: "
                      f"{record.outcome} {record.reason} ({record.touches} touches, {record.keys} keys, "
                      f"{record.touches_after_identity} after identity, {record.seconds:.1f} s machine, "
                      f"{record.wall_seconds:.1f} s wall)", flush=True)
                summary.write(out)
        finally:
            driver.stop()
    finally:
        runtime.close()
    return scripts


def flow_passed(script: FlowScript, record: FlowRecord) -> bool:
    """A plain flow must complete; one with a scripted fault may fail, only not by the driver losing its way;
    any other scripted flow must not fail."""
    if script.help and not record.help_ticket:
        return False  # the call for help never happened
    if replace(script, input="touch") == FlowScript(script.item):
        return record.outcome == "completed"
    if script.scripted_fault:
        return not record.reason.startswith(DemoError.code)
    return record.outcome != "failed"


def cli_demo(args: argparse.Namespace) -> int:
    """`kiosk demo --out DIR [--flow FLOW ...] [--all] [--state DIR]` (FLOW_SYNTAX)."""
    cfg = load(getattr(args, "config", None))
    out = Path(args.out)
    state = getattr(args, "state", None)
    status = run_demo(cfg, out, list(args.flow or []), all_items=args.all,
                      shots=getattr(args, "screenshots", "all"), state_dir=Path(state) if state else None)
    print(f"kiosk demo: summary written to {(out / 'summary.json').resolve()}")
    return status
