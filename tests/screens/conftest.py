"""UI fixtures: one offscreen KioskApp on the real services, driven by scripted touches.

Kivy reads its environment when first imported and can open one window per process, so
the environment is set here, before anything imports Kivy, and the app is shared by the
whole session; each test starts from the home screen.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

_KIVY_HOME = tempfile.mkdtemp(prefix="kiosk-test-kivy-")
os.environ.update({
    "SDL_VIDEODRIVER": "offscreen",
    "KIVY_HOME": _KIVY_HOME,
    "KIVY_NO_CONFIG": "1",
    "KIVY_NO_FILELOG": "1",
    "KIVY_NO_ARGS": "1",
    "KIVY_LOG_MODE": "PYTHON",
})

import pytest  # noqa: E402

from kiosk.config import from_dict  # noqa: E402

IDLE_TIMEOUT_S = 30  # the shortest the config allows with the shortest warning
IDLE_WARNING_S = 20  # the shortest the config allows: the warning shows 10 s after the last touch


def ui_config(state_dir: Path) -> Any:
    """Demo profile, short idle timeout, the ID card still in the resident's hand."""
    return from_dict({
        "paths": {"state_dir": str(state_dir)},
        "ui": {"idle_timeout_s": IDLE_TIMEOUT_S, "idle_warning_s": IDLE_WARNING_S},
        "devices": {"id_card": {"driver": "sim", "options": {"card_on_reader": False}},
                    "a4_printer": {"driver": "sim", "options": {"output_dir": str(state_dir / "paper_tray")}}},
    })


@pytest.fixture(scope="session")
def kiosk_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The running app's UiDriver (``.app``, ``.app.runtime``), on the real services."""
    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.demo.driver import UiDriver

    cfg = ui_config(tmp_path_factory.mktemp("kiosk-state"))
    prepare_kivy(cfg.ui, headless=True)
    runtime = build_runtime(cfg)
    driver = UiDriver(KioskApp(runtime, cfg))
    try:
        driver.start()
        driver.wait_until(lambda: driver.app.availability > 0, "the first availability check")
        # Kivy was imported long before in a whole-suite run: the kiosk must not open on its attract screen.
        assert not driver.app.attract_shown, "the attract screen came up at start-up"
        yield driver
        driver.stop()
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def fresh_records(kiosk_ui: Any) -> None:
    """Each test module meets the residents' records as seeded: a module that pays WANG's fine
    or applies for a certificate does not take them from the next (the app is shared)."""
    kiosk_ui.app.runtime.sim.app.db.reseed_records()


@pytest.fixture
def ui(kiosk_ui: Any, fresh_records: None) -> Iterator[Any]:
    """The shared app, at home, in Chinese, with the card off the reader."""
    app = kiosk_ui.app
    reader = app.runtime.devices.get("id_card")

    def reset() -> None:
        kiosk_ui.answer_idle_warning = False  # a scripted resident run by a test answers it; the tests do not
        reader.remove()
        app.busy = app.busy_overlay = False
        if app.txn is not None or app.sm.current != "home":
            app.end_session("cancel")
        # The app may have sat unpumped for minutes (a long test of another kind in between, as an
        # xdist worker runs them): the attract screen comes at the first tick, or a minute into a test.
        app.attract_leave()
        app.touched()
        app.lang = "zh_CN"
        kiosk_ui.wait_screen("home")

    reset()
    yield kiosk_ui
    reset()
