"""Packaging: the wheel and the editable install build without setuptools warnings and ship every data file.

The build runs on a copy of the source made the way `kiosk-release build` makes it, through
setuptools' PEP 517/660 hooks (what pip calls). pip shows a build backend's Python warnings
to whoever installs (`make run`, `make test`), so none may be raised: no "package would be
ignored" for the data folders, no notice about the editable finder.
"""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from provisioning.release.build import copy_source

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "provisioning", "print_templates")
BUILD = """
import sys
from setuptools import build_meta
out = sys.argv[1]
print("WHEEL", build_meta.build_wheel(out))
print("EDITABLE", build_meta.build_editable(out))
"""


def test_wheel_and_editable_build_warn_of_nothing_and_ship_every_data_file(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    copy_source(ROOT, src)
    out.mkdir()
    proc = subprocess.run([sys.executable, "-W", "always", "-c", BUILD, str(out)], cwd=src,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = re.findall(r"^.*: \w*(?:Warning|InformationOnly): .*$", proc.stderr, flags=re.M)
    assert warnings == [], "\n".join(warnings)
    assert "would be ignored" not in proc.stdout + proc.stderr
    built = dict(line.split() for line in proc.stdout.splitlines() if line.startswith(("WHEEL ", "EDITABLE ")))
    with zipfile.ZipFile(out / built["WHEEL"]) as wheel:
        shipped = set(wheel.namelist())
    data = {p.relative_to(src).as_posix() for pkg in PACKAGES for p in (src / pkg).rglob("*")
            if p.is_file() and p.suffix != ".py"}
    assert {"kiosk/locale/zh_CN/LC_MESSAGES/ui.po", "kiosk/hardware/simulators/demo_pki/ds.pem",
            "kiosk/services/catalog.yaml", "kiosk/screens/home.kv", "print_templates/layouts.yaml"} <= data
    assert sorted(data - shipped) == []
    assert not [name for name in shipped if "__pycache__" in name]
    assert "kiosk/backend_sim/operations/household.py" in shipped
