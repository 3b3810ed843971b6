"""The CLI's console log: INFO normally, only warnings while the demo reports its own progress, always masked."""
from __future__ import annotations

import subprocess
import sys

import pytest

from kiosk.cli import _reports_its_progress, build_parser

SCRIPT = """
import logging, sys
from kiosk.services.logs import setup_console
setup_console(verbose=sys.argv[1] == "verbose", quiet=sys.argv[2] == "quiet")
logging.getLogger("kiosk.backend_sim").info("POST /api/v1/operations/x -> 200")
logging.getLogger("kiosk.services.runtime").warning("backend down for 370102198503151234")
logging.getLogger("kivy").debug("GL: details")
"""


def _console(verbose: str, quiet: str) -> str:
    return subprocess.run([sys.executable, "-c", SCRIPT, verbose, quiet], capture_output=True, text=True,
                          timeout=60, check=True).stderr


def test_quiet_console_shows_warnings_only_and_masks_them() -> None:
    err = _console("-", "quiet")
    assert "POST /api/v1/operations" not in err
    assert "WARNING kiosk.services.runtime backend down for 3701**********1234" in err


def test_plain_console_shows_info_and_verbose_shows_debug_even_when_quiet() -> None:
    assert "INFO kiosk.backend_sim POST /api/v1/operations/x -> 200" in _console("-", "-")
    assert "DEBUG kivy GL: details" not in _console("-", "-")
    err = _console("verbose", "quiet")
    assert "DEBUG kivy GL: details" in err and "INFO kiosk.backend_sim" in err


@pytest.mark.parametrize("argv, display, quiet", [
    (["demo", "--out", "o"], "", True),
    (["run"], "", True),  # no display: `kiosk run` runs the demo
    (["run"], ":0", False),
    (["run", "--headless"], "", False),  # the kiosk itself, offscreen: its log is its output
    (["backend-sim"], "", False),
    (["health"], "", False),
])
def test_the_demo_is_the_command_that_reports_its_own_progress(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                               display: str, quiet: bool) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    if display:
        monkeypatch.setenv("DISPLAY", display)
    assert _reports_its_progress(build_parser().parse_args(argv)) is quiet
