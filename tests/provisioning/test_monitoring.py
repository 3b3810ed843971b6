"""The operators' monitoring files: Alertmanager routing and inhibition, runbooks, the scrape config, the dashboard.

Real tools only: `amtool check-config` and `amtool config routes test` (Debian package
prometheus-alertmanager, installed by the Makefile like promtool), a real Alertmanager for
inhibition, `promtool check config` and `promtool test rules` for the dashboard's expressions.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "provisioning" / "monitoring"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager.example.yml"
RULES = MONITORING / "kiosk-alerts.yml"
DASHBOARD = MONITORING / "kiosk-dashboard.json"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
RECEIVER = {"critical": "on-call-pager", "warning": "control-room"}


def _alerts() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_alertmanager_example_passes_amtool_check_config():
    proc = subprocess.run([AMTOOL, "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    assert "2 inhibit rules" in proc.stdout and "2 receivers" in proc.stdout


def test_every_alert_routes_by_its_severity():
    """`amtool config routes test` for each rule's labels: critical pages, warning goes to the control room."""
    lines = []
    for alert in _alerts():
        severity = alert["labels"]["severity"]
        labels = [f"alertname={alert['alert']}", f"severity={severity}", "terminal=JN-LX-0042"]
        proc = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                               f"--verify.receivers={RECEIVER[severity]}", *labels],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{alert['alert']}: {proc.stdout} {proc.stderr}"
        assert proc.stdout.strip() == RECEIVER[severity]
        lines.append(f"{' '.join(labels)} -> {proc.stdout.strip()}")
    print("\n".join(lines))  # the routing table, for the record (pytest -s)
    assert {a["labels"]["severity"] for a in _alerts()} == {"critical", "warning"}
    wrong = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                            "--verify.receivers=on-call-pager", "alertname=KioskPaperOut", "severity=warning"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0  # the check can fail: paper out does not page at night


def test_severities_match_the_harm():
    severity = {a["alert"]: a["labels"]["severity"] for a in _alerts()}
    assert severity["KioskPaperOut"] == "warning" and severity["KioskPaperLow"] == "warning"
    assert severity["KioskOutOfService"] == "critical" and severity["KioskDown"] == "critical"
    assert severity["KioskBackendUnreachable"] == "critical"
    assert "kiosk_backend_up{job=\"kiosk\"} == 0" in next(a["expr"] for a in _alerts()
                                                         if a["alert"] == "KioskBackendUnreachable")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_each_rule_has_a_runbook_section_and_names_the_terminal():
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), flags=re.M)}
    for alert in _alerts():
        url = alert["annotations"]["runbook_url"]
        assert url.startswith("https://police-kiosk.example/docs/OPERATIONS.md#"), url
        assert url.split("#", 1)[1] in anchors, f"{alert['alert']}: no section {url}"
        assert "{{ $labels.terminal }}" in alert["annotations"]["summary"], alert["alert"]
        assert "$labels.instance" not in alert["annotations"]["summary"], alert["alert"]


def test_the_example_scrape_config_passes_promtool_and_labels_targets_with_the_terminal(tmp_path):
    for name in ("prometheus.example.yml", "kiosk-alerts.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    shutil.copy(MONITORING / "kiosk-targets.example.json", tmp_path / "kiosk-targets.json")
    proc = subprocess.run([PROMTOOL, "check", "config", "prometheus.example.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    targets = json.loads((MONITORING / "kiosk-targets.example.json").read_text())
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,32}", t["labels"]["terminal"]) for t in targets)
    job = yaml.safe_load((MONITORING / "prometheus.example.yml").read_text())["scrape_configs"][0]
    assert job["job_name"] == "kiosk" and job["honor_labels"] is True


# --- a real Alertmanager: inhibition ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path):
    port = _free_port()
    log = open(tmp_path / "alertmanager.log", "w")
    proc = subprocess.Popen([ALERTMANAGER, f"--config.file={ALERTMANAGER_CONFIG}", f"--storage.path={tmp_path}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()[-2000:]
            try:
                if requests.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "alertmanager did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_device_alerts_are_held_back_while_the_kiosk_is_down(alertmanager):
    def alert(name: str, terminal: str, severity: str, **extra: str) -> dict:
        return {"labels": {"alertname": name, "terminal": terminal, "severity": severity, "job": "kiosk", **extra},
                "annotations": {"summary": f"{name} at {terminal}"}}

    sent = [alert("KioskDown", "JN-LX-0001", "critical"),
            alert("KioskPaperOut", "JN-LX-0001", "warning", supply="receipt_printer_paper"),
            alert("KioskDeviceFaulty", "JN-LX-0001", "warning", device="camera"),
            alert("KioskPaperOut", "JN-LX-0002", "warning", supply="receipt_printer_paper"),
            alert("KioskPaidNotDelivered", "JN-LX-0001", "critical")]
    assert requests.post(f"{alertmanager}/api/v2/alerts", json=sent, timeout=5).status_code == 200

    def status() -> dict[tuple[str, str], dict]:
        got = requests.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        return {(a["labels"]["alertname"], a["labels"]["terminal"]): a["status"] for a in got}

    deadline = time.monotonic() + 20
    while len(status()) < len(sent):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    st = status()
    assert st[("KioskPaperOut", "JN-LX-0001")]["inhibitedBy"] and st[("KioskDeviceFaulty", "JN-LX-0001")]["inhibitedBy"]
    assert st[("KioskPaperOut", "JN-LX-0002")]["inhibitedBy"] == []  # another kiosk's paper still alerts
    assert st[("KioskDown", "JN-LX-0001")]["inhibitedBy"] == []
    assert st[("KioskPaidNotDelivered", "JN-LX-0001")]["inhibitedBy"] == []  # money is never held back


# --- the dashboard ---------------------------------------------------------------------------------
def _panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_every_stat_panel_has_thresholds_and_the_operator_panels_are_there():
    for panel in _panels():
        if panel["type"] == "stat":
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert len(steps) >= 2 and steps[0]["value"] is None, panel["title"]
    exprs = " ".join(t["expr"] for p in _panels() for t in p["targets"])
    for metric in ("kiosk_backend_up", "kiosk_out_of_service", "kiosk_items_unavailable", "kiosk_disk_free_bytes"):
        assert metric in exprs, metric
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert variables["terminal"]["definition"] == 'label_values(up{job="kiosk"}, terminal)'
    assert "$instance" not in exprs and exprs.count('terminal=~"$terminal"') >= sum(
        len(p["targets"]) for p in _panels())  # every query filters by the terminal variable


def test_oldest_heartbeat_ignores_a_terminal_that_never_sent_one(tmp_path):
    """Evaluated by promtool: a terminal at 0 ("never") must not make the oldest heartbeat 56 years."""
    exprs = {p["title"]: p["targets"][0]["expr"].replace("$terminal", ".*") for p in _panels()}
    series = "kiosk_heartbeat_last_success_timestamp_seconds"
    (tmp_path / "none.yml").write_text("groups: []\n")
    (tmp_path / "dash.test.yml").write_text(yaml.safe_dump({
        "rule_files": ["none.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m",
                   "input_series": [{"series": f'{series}{{job="kiosk", terminal="JN-LX-0001"}}', "values": "0x20"},
                                    {"series": f'{series}{{job="kiosk", terminal="JN-LX-0002"}}',
                                     "values": "-60+60x20"}],  # 60 s old at every step
                   "promql_expr_test": [
                       {"expr": exprs["Oldest heartbeat"], "eval_time": "10m", "exp_samples": [{"value": 60}]},
                       {"expr": exprs["Never sent a heartbeat"], "eval_time": "10m",
                        "exp_samples": [{"value": 1}]}]}]}))
    proc = subprocess.run([PROMTOOL, "test", "rules", "dash.test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_metrics_list_in_operations_is_what_the_kiosk_exports():
    from prometheus_client.parser import text_string_to_metric_families

    from kiosk.services.health import _gauges_for
    from kiosk.services.metrics import KioskMetrics

    m = KioskMetrics("JN-LX-0042")
    _gauges_for(m)
    exported = set()
    for family in text_string_to_metric_families(m.exposition().decode()):
        suffix = "_total" if family.type == "counter" else ("_info" if family.type == "info" else "")
        exported.add(family.name + suffix)
    listed = set(re.findall(r"^\| `([a-z_]+)", OPERATIONS.read_text(), flags=re.M))
    assert exported == listed, (exported - listed, listed - exported)
