"""kiosk-provision install also stages fleet updates: kiosk-update.service, .timer (every update.check_interval_h
with a random delay, at the window's start, after boot) and .path (update_now), enabled and passing
`systemd-analyze verify`."""
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from provisioning.init_config import write_config

UNITS = ("kiosk-update.service", "kiosk-update.timer", "kiosk-update.path")


def _release_bins(tmp_path):
    """An installed release's entry points, outside any source checkout (install refuses a checkout's)."""
    folder = tmp_path / "opt/police-kiosk/current/bin"
    folder.mkdir(parents=True)
    for name, module in (("kiosk", "kiosk.cli"), ("kiosk-provision", "provisioning.cli")):
        (folder / name).write_text(f"#!{sys.executable}\nfrom {module} import main\nmain()\n")
        (folder / name).chmod(0o755)
    return str(folder / "kiosk")


def _install(tmp_path, update):
    config = tmp_path / "kiosk.toml"
    write_config(config, {"paths": {"state_dir": "/var/lib/kiosk"}, "terminal": {"timezone": "Asia/Urumqi"},
                          "update": update})
    root = tmp_path / "stage"
    proc = subprocess.run([sys.executable, "-m", "provisioning.cli", "install", "--root", str(root), "--config",
                           str(config), "--kiosk-bin", _release_bins(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return root / "etc/systemd/system"


def _read(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def _verify(*paths):
    proc = subprocess.run([shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze", "verify", *map(str, paths)],
                          capture_output=True, text=True, timeout=120,
                          env={"SYSTEMD_LOG_COLOR": "0", "PATH": "/usr/bin:/bin"})
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def test_the_update_units_are_staged_enabled_and_pass_systemd_analyze_verify(tmp_path):
    units = _install(tmp_path, {"window": "23:30-04:30", "check_interval_h": 6})
    assert _verify(*(units / name for name in UNITS)) == (0, "")  # again, independently of the installer
    service = _read(units / "kiosk-update.service")["Service"]
    assert service["Type"] == "oneshot"  # a deferred run exits 0: a success for systemd
    provision = tmp_path / "opt/police-kiosk/current/bin/kiosk-provision"
    assert service["ExecStart"] == f"{provision} update apply --config /etc/kiosk/kiosk.toml"
    timer = _read(units / "kiosk-update.timer")["Timer"]
    assert timer["OnUnitActiveSec"] == "360min" and timer["RandomizedDelaySec"] == "30min"
    assert timer["OnCalendar"] == "*-*-* 23:30:00 Asia/Urumqi"  # the window's start, in station time
    assert timer["Unit"] == "kiosk-update.service" and timer["Persistent"] == "true"
    path = _read(units / "kiosk-update.path")["Path"]
    assert path["PathChanged"] == "/var/lib/kiosk/update-now.json" and path["Unit"] == "kiosk-update.service"
    for wants, unit in (("timers.target.wants", "kiosk-update.timer"), ("paths.target.wants", "kiosk-update.path")):
        assert (units / wants / unit).readlink() == Path(f"/etc/systemd/system/{unit}")


def test_the_check_interval_sets_the_period_and_bounds_the_random_delay(tmp_path):
    timer = _read(_install(tmp_path, {"check_interval_h": 1.5, "window": "03:00-03:20"}) / "kiosk-update.timer")
    assert timer["Timer"]["OnUnitActiveSec"] == "90min"
    assert timer["Timer"]["RandomizedDelaySec"] == "10min"  # half of a 20-minute window


def test_verify_catches_a_broken_timer(tmp_path):
    """The check is real: a timer systemd would refuse fails it."""
    units = _install(tmp_path, {})
    timer = units / "kiosk-update.timer"
    timer.write_text(timer.read_text().replace("OnCalendar=*-*-* 02:00:00", "OnCalendar=*-*-* 25:00:00"))
    code, output = _verify(units / "kiosk-update.service", timer)
    assert code != 0 or output, "systemd-analyze accepted an impossible calendar time"
