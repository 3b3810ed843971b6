"""`kiosk ui-audit` as a user runs it: every screen file, the 71 forms, both languages and modes, no violation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.services.catalog import Catalog
from kiosk.ui_audit.scenes import screen_files

# One whole audit (about 400 renders) takes several minutes: longer than the suite's per-test limit.
pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    """One run of `kiosk ui-audit --json` in its own process (its own offscreen window)."""
    cwd = tmp_path_factory.mktemp("ui-audit")
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "ui-audit", "--json"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=1500)
    return result, json.loads(result.stdout)


def test_the_report_has_the_contracted_shape(audit: tuple) -> None:
    _result, report = audit
    assert set(report) == {"screens", "violations"}
    for render in report["screens"]:
        assert set(render) == {"screen", "item", "state", "lang", "mode", "violations"}
        for violation in render["violations"]:
            assert set(violation) == {"rule", "widget", "value", "limit"}
    assert report["violations"] == sum(len(r["violations"]) for r in report["screens"])


def test_every_screen_every_form_both_languages_and_both_modes_are_drawn(audit: tuple) -> None:
    _result, report = audit
    renders = report["screens"]
    combos = {(r["lang"], r["mode"]) for r in renders}
    assert combos == {("zh_CN", "normal"), ("zh_CN", "care"), ("en", "normal"), ("en", "care")}
    by_scene: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
    for r in renders:
        by_scene.setdefault((r["screen"], r["item"], r["state"]), set()).add((r["lang"], r["mode"]))
    assert all(seen == combos for seen in by_scene.values()), [s for s, seen in by_scene.items() if seen != combos]
    screens = {screen for screen, _item, _state in by_scene}
    assert set(screen_files()) <= screens
    assert {"maintenance", "maintenance_pin", "home", "form", "error", "payment"} <= screens
    forms = {item for screen, item, state in by_scene if screen == "form" and state == ""}
    catalog_items = {item.id for item in Catalog.load().items}
    assert len(catalog_items) == 71 and forms == catalog_items
    states = {state for _screen, _item, state in by_scene}
    assert {"keyboard_open", "keypad_open", "idle_warning", "refusal", "error"} <= states
    assert all(r["item"] == "" for r in renders if r["screen"] in ("home", "maintenance", "maintenance_pin"))


def test_no_violations_and_exit_status_zero(audit: tuple) -> None:
    result, report = audit
    found = [(r["screen"], r["item"], r["state"], r["lang"], r["mode"], v)
             for r in report["screens"] for v in r["violations"]]
    assert report["violations"] == 0, found[:20]
    assert result.returncode == 0, result.stderr[-2000:]
