"""The backlight through sysfs, against a fake /sys/class/backlight folder in tmp_path."""
from __future__ import annotations

from pathlib import Path

from kiosk.hardware.backlight import Backlight


def _device(root: Path, name: str, level: int | str, top: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "brightness").write_text(f"{level}\n")
    (folder / "max_brightness").write_text(f"{top}\n")
    (folder / "actual_brightness").write_text(f"{level}\n")  # read-only in the kernel; the driver leaves it
    return folder


def _level(folder: Path) -> int:
    return int((folder / "brightness").read_text())


def test_dim_lowers_to_the_fraction_of_the_maximum_and_restore_puts_the_level_back(tmp_path):
    panel = _device(tmp_path, "intel_backlight", 900, 1000)
    light = Backlight(tmp_path)
    assert light.dim(0.3)
    assert _level(panel) == 300 and light.dimmed
    assert not light.dim(0.1)  # dimmed already: the level it keeps to restore is still the resident's
    assert light.restore()
    assert _level(panel) == 900 and not light.dimmed
    assert not light.restore()  # nothing left to put back


def test_a_level_already_lower_is_left_alone(tmp_path):
    panel = _device(tmp_path, "panel", 100, 1000)
    light = Backlight(tmp_path)
    assert not light.dim(0.3)
    assert _level(panel) == 100 and not light.restore()


def test_never_down_to_zero(tmp_path):
    panel = _device(tmp_path, "panel", 7, 7)
    assert Backlight(tmp_path).dim(0.01)
    assert _level(panel) == 1  # 0 may switch the panel off


def test_the_first_device_by_name_or_the_one_named(tmp_path):
    (tmp_path / "acpi_video0").mkdir()  # no brightness files: not a usable device
    first = _device(tmp_path, "b_panel", 50, 100)
    second = _device(tmp_path, "c_panel", 80, 100)
    assert Backlight(tmp_path).folder() == first
    light = Backlight(tmp_path, device="c_panel")
    assert light.dim(0.5)
    assert _level(second) == 50 and _level(first) == 50


def test_no_backlight_or_an_unreadable_one_is_no_error(tmp_path):
    assert not Backlight(tmp_path / "missing").dim(0.3)
    assert Backlight(tmp_path / "missing").level() is None
    panel = _device(tmp_path, "panel", "garbage", 100)
    light = Backlight(tmp_path)
    assert not light.dim(0.3) and not light.restore()
    assert (panel / "brightness").read_text() == "garbage\n"


def test_a_kiosk_that_died_dimmed_gets_the_level_back_at_its_next_start(tmp_path):
    panel = _device(tmp_path / "sys", "panel", 900, 1000)
    remember = tmp_path / "state" / "backlight.json"
    dying = Backlight(tmp_path / "sys", remember=remember)
    assert dying.dim(0.3) and remember.is_file()  # the level to go back to is on the disk before the dimming
    assert _level(panel) == 300
    # killed here: nothing restores; the next start finds the dimmed level and the record
    starting = Backlight(tmp_path / "sys", remember=remember)
    assert starting.recover()
    assert _level(panel) == 900 and not remember.exists()
    assert not starting.recover()  # once


def test_restore_forgets_the_record_and_a_damaged_record_is_dropped(tmp_path):
    panel = _device(tmp_path / "sys", "panel", 900, 1000)
    remember = tmp_path / "backlight.json"
    light = Backlight(tmp_path / "sys", remember=remember)
    assert light.dim(0.5) and light.restore()
    assert not remember.exists() and _level(panel) == 900
    remember.write_text("{broken")
    assert not Backlight(tmp_path / "sys", remember=remember).recover()
    assert not remember.exists() and _level(panel) == 900
