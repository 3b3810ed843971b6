"""kiosk-provision detect: lists what the machine shows, as JSON a technician's tools can read."""
import json
import subprocess
import sys


def test_detect_json_reports_every_bus_even_when_a_service_is_absent():
    out = subprocess.run([sys.executable, "-m", "provisioning.cli", "detect", "--json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    assert all({"bus", "address", "description"} <= set(r) for r in rows)
    assert {r["bus"] for r in rows} >= {"pcsc", "cups"}  # each source reports, even when absent
