"""kiosk-provision set-pin: the technician's PIN reaches the state folder only as a hash."""
import subprocess
import sys

import pytest

from kiosk.services.maintenance import MaintenanceAccess, WrongPin
from provisioning.init_config import write_config


def _set_pin(config, answers):
    return subprocess.run([sys.executable, "-m", "provisioning.cli", "set-pin", "--config", str(config)],
                          input=answers, capture_output=True, text=True, timeout=60)


def test_set_pin_stores_a_hash_the_kiosk_accepts(tmp_path):
    config = tmp_path / "kiosk.toml"
    write_config(config, {"paths": {"state_dir": str(tmp_path / "state")}})
    proc = _set_pin(config, "739148\n739148\n")
    assert proc.returncode == 0, proc.stderr
    access = MaintenanceAccess.for_state_dir(tmp_path / "state")
    assert "739148" not in access.path.read_text()
    access.check("739148")
    with pytest.raises(WrongPin):
        access.check("739149")


def test_mismatched_or_weak_pins_change_nothing(tmp_path):
    config = tmp_path / "kiosk.toml"
    write_config(config, {"paths": {"state_dir": str(tmp_path / "state")}})
    differ = _set_pin(config, "739148\n739140\n")
    assert differ.returncode == 73 and "differ" in differ.stderr
    weak = _set_pin(config, "123456\n123456\n")
    assert weak.returncode == 2 and "maintenance_pin_rejected" in weak.stderr
    assert not (tmp_path / "state" / "maintenance.json").exists()
