"""`kiosk ui-audit [--json] [--out DIR]`: render every scene in each language and mode, report the violations."""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kiosk.config import KioskConfig, load
from kiosk.ui_audit.rules import LANGS, LIMITS, MODES, Violation
from kiosk.ui_audit.scenes import Scene, Stager, scenes

log = logging.getLogger(__name__)

AUDIT_IDLE_TIMEOUT_S = 900  # no session times out while its screens are being drawn


@dataclass
class Render:
    """One scene drawn in one language and mode, and what it broke."""

    screen: str
    item: str
    state: str
    lang: str
    mode: str
    violations: list[Violation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: screen, item, state, lang, mode, violations."""
        return {"screen": self.screen, "item": self.item, "state": self.state, "lang": self.lang,
                "mode": self.mode, "violations": [v.to_dict() for v in self.violations]}

    @property
    def png_name(self) -> str:
        """The gallery file of this render."""
        parts = [self.screen, self.item, self.state, self.lang, self.mode]
        return "-".join(p for p in parts if p) + ".png"


@dataclass
class Report:
    """Every render of an audit run and how long it took."""

    renders: list[Render] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def violations(self) -> int:
        """How many violations were found in all."""
        return sum(len(r.violations) for r in self.renders)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: {"screens": [...], "violations": N}."""
        return {"screens": [r.to_dict() for r in self.renders], "violations": self.violations}


def audit_config(cfg: KioskConfig, state_dir: Path) -> KioskConfig:
    """The demo's config (fresh state, simulators) with an idle timeout no render runs into."""
    from kiosk.demo.command import demo_config

    cfg = demo_config(cfg, state_dir)
    # The attract screen comes only when a scene asks for it, never between two renders.
    ui = cfg.ui.model_copy(update={"idle_timeout_s": AUDIT_IDLE_TIMEOUT_S, "care_mode_default": False,
                                   "attract_after_s": 0})
    return cfg.model_copy(update={"ui": ui})


def render_scene(stager: Stager, scene: Scene, out: Path | None, report: Report) -> None:
    """Stage ``scene`` once, then draw and check it in every language and mode."""
    from kiosk.ui_audit.widgets import check_screen

    app, driver = stager.app, stager.driver
    try:
        scene.stage(stager)
        for lang in LANGS:
            for mode in MODES:
                app.lang, app.care = lang, mode == "care"
                if scene.refresh is not None:
                    scene.refresh(stager)
                driver.pump(1)  # lays the screen out again in the new language and mode
                frame = driver.grab()
                render = Render(scene.screen, scene.item, scene.state, lang, mode)
                if app.sm.current != scene.screen:
                    shown = app.sm.current + (f": {app.error.code}" if app.error is not None else "")
                    render.violations.append(Violation("staging", scene.screen, shown, scene.screen))
                render.violations.extend(check_screen(app.root, frame, LIMITS[mode], lang))
                report.renders.append(render)
                if out is not None:
                    frame.save(out / render.png_name, optimize=False, compress_level=1)
    except Exception as exc:  # reported as the scene's violation; the other scenes still run
        log.warning("scene %s %s %s failed", scene.screen, scene.item, scene.state, exc_info=True)
        report.renders.append(Render(scene.screen, scene.item, scene.state, app.lang, "care" if app.care else "normal",
                                     [Violation("staging", scene.screen, f"{type(exc).__name__}: {exc}", "")]))
    finally:
        app.lang, app.care = "zh_CN", False
        stager.leave()


def run_audit(cfg: KioskConfig, out: Path | None = None, only: Callable[[Scene], bool] | None = None) -> Report:
    """Open the kiosk offscreen on the simulators and audit every scene (or those ``only`` keeps); PNGs of each
    render into ``out``."""
    from kivy.clock import Clock

    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.demo.driver import UiDriver

    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="kiosk-ui-audit-"))
    report = Report()
    try:
        cfg = audit_config(cfg, state)
        prepare_kivy(cfg.ui, headless=True)
        runtime = build_runtime(cfg)
        try:
            app = KioskApp(runtime, cfg)
            driver = UiDriver(app)
            driver.start()
            try:
                driver.wait_until(lambda: app.availability > 0, "the first availability check")
                # What can run stays as first found: a redraw between renders would mix two states.
                Clock.unschedule(app.refresh_availability)
                if out is not None:
                    out.mkdir(parents=True, exist_ok=True)
                stager = Stager(driver)
                for scene in scenes(runtime.catalog):
                    if only is not None and not only(scene):
                        continue
                    render_scene(stager, scene, out, report)
            finally:
                driver.stop()
        finally:
            runtime.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def summary_lines(report: Report) -> list[str]:
    """The report for a person: one line per violation, then the totals."""
    lines = []
    for render in report.renders:
        for v in render.violations:
            where = "/".join(p for p in (render.screen, render.item, render.state) if p)
            lines.append(f"{where} [{render.lang}, {render.mode}] {v.rule}: {v.widget} {v.value!r} (limit {v.limit!r})")
    lines.append(f"{len(report.renders)} renders, {report.violations} violations, {report.seconds:.1f} s")
    return lines


def cli_ui_audit(args: argparse.Namespace) -> int:
    """`kiosk ui-audit [--json] [--out DIR]`: exit 1 when any violation is found."""
    cfg = load(getattr(args, "config", None))
    out = Path(args.out) if getattr(args, "out", None) else None
    report = run_audit(cfg, out)
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(summary_lines(report)))
    if out is not None:
        print(f"kiosk ui-audit: {len(report.renders)} renders in {out.resolve()}", file=sys.stderr)
    return 1 if report.violations else 0
