"""kiosk selftest --release: the checks an installed release runs on itself, without opening a device."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

KIOSK = str(Path(sys.executable).parent / "kiosk")


def _selftest(tmp_path, *argv, config=None):
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "HOME": str(tmp_path)}
    env.pop("KIOSK_CONFIG", None)
    cmd = [KIOSK] + (["--config", str(config)] if config else []) + ["selftest", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_every_check_passes_and_no_device_or_state_is_touched(tmp_path):
    state = tmp_path / "terminal-state"
    config = tmp_path / "kiosk.toml"
    printer = socket.create_server(("127.0.0.1", 0))  # the terminal's receipt printer, listening
    printer.setblocking(False)
    port = printer.getsockname()[1]
    config.write_text(f'[terminal]\nid = "JN-SELF-0001"\n[paths]\nstate_dir = "{state}"\n'
                      f'[devices.receipt_printer]\ndriver = "network"\noptions = {{ host = "127.0.0.1", port = {port} }}\n')
    try:
        proc = _selftest(tmp_path, "--release", "--json", config=config)
        with pytest.raises(BlockingIOError):
            printer.accept()  # nobody connected to the printer
    finally:
        printer.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["version"]
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ["config", "catalog", "translations", "certificate", "receipt", "ui"]
    assert "JN-SELF-0001" in checks["config"]["detail"] and checks["catalog"]["detail"] == "71 items"
    assert "home screen drawn (1080x1920" in checks["ui"]["detail"]
    # the UI ran on simulators in a temporary folder: the terminal's state folder was never created
    assert not state.exists()


def test_a_config_that_does_not_load_fails_the_self_test(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[ui]\nidle_timeout_s = 1\n')
    proc = _selftest(tmp_path, "--release", config=config)
    assert proc.returncode == 1
    assert "[FAIL] config" in proc.stdout and "ui.idle_timeout_s" in proc.stdout
    assert "self-test FAILED" in proc.stdout


def test_without_release_it_says_what_to_run(tmp_path):
    proc = _selftest(tmp_path)
    assert proc.returncode == 2 and "--release" in proc.stdout and "kiosk-provision selftest" in proc.stdout
