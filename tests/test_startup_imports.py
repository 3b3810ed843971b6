"""What the kiosk imports before its first frame: the libraries only later work needs stay out (CONTRACTS.md,
"Start-up"). Each is tenths of a second of a start a resident waits for, on a 2-core machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Imported where their work is done: passive authentication and signing (cryptography, asn1crypto), the
# simulator's HTTP server and application (werkzeug, flask, openapi-core), speech (pypinyin), documents
# (reportlab), the backend's HTTP client (requests), the camera's arrays (numpy).
LATER = ("cryptography", "asn1crypto", "werkzeug", "flask", "openapi_core", "pypinyin", "reportlab", "requests",
         "numpy")

SCRIPT = """
import json, sys, tempfile
from kiosk.app import build_runtime
from kiosk.config import from_dict

runtime = build_runtime(from_dict({"paths": {"state_dir": tempfile.mkdtemp()}}), defer_sim=True)
try:
    print(json.dumps({"loaded": sorted(m for m in %r if m in sys.modules),
                      "devices": sorted(name for name, _ in runtime.devices.all())}))
finally:
    runtime.close()
"""


def start(tmp_path: Path, modules: tuple[str, ...], **env_extra: str) -> dict[str, list[str]]:
    """Build the demo runtime in a fresh process; which of ``modules`` it imported, and its devices."""
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_LOG_MODE": "PYTHON", "SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(tmp_path / "kivy"),
           "PYTHONPATH": str(ROOT), **env_extra}
    env.pop("KIOSK_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT % (modules,)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_demo_runtime_is_built_without_the_libraries_later_work_needs(tmp_path: Path) -> None:
    found = start(tmp_path, LATER)
    assert "pcsc" in found["devices"] and "id_card" in found["devices"]  # the chip reader was built and opened
    assert found["loaded"] == []


def test_a_second_start_reads_the_catalog_without_yaml(tmp_path: Path) -> None:
    # The first start parses catalog.yaml and keeps a copy (kiosk.services.catalog); the next ones read the copy.
    cache = str(tmp_path / "cache")
    assert start(tmp_path, ("yaml",), KIOSK_CACHE_DIR=cache)["loaded"] == ["yaml"]
    assert start(tmp_path, ("yaml",), KIOSK_CACHE_DIR=cache)["loaded"] == []
