"""Kiosk metrics: names and values, promtool-clean output, typed port errors, alert rules, and a
real Prometheus server scraping an exporter whose simulated printer runs out of paper."""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kiosk.config import DEVICE_NAMES, from_dict
from kiosk.errors import ConfigError
from kiosk.hardware.base import DeviceState, SupplyState, status
from kiosk.hardware.factory import build_devices
from kiosk.services.metrics import KioskMetrics, MetricsPortInUse, MetricsServerError, start_http_server

MONITORING = Path(__file__).resolve().parents[2] / "provisioning" / "monitoring"
RULES = MONITORING / "kiosk-alerts.yml"
RULE_TESTS = MONITORING / "kiosk-alerts.test.yml"
DASHBOARD = MONITORING / "kiosk-dashboard.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def samples(metrics: KioskMetrics) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics, name, **labels):
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def full_metrics(tmp_path):
    cfg = from_dict({"paths": {"state_dir": str(tmp_path)},
                     "devices": {"receipt_printer": {"faults": {"paper_low": True}},
                                 "camera": {"faults": {"offline": True}}}})
    devices = build_devices(cfg)
    m = KioskMetrics(terminal_id="JN-DEMO-0001", version="9.9.9")
    m.update_devices(devices.statuses())
    for item, outcome, seconds in [("H01", "completed", 42.0), ("H01", "failed", 7.5), ("T04", "refused", 3.0)]:
        m.record_transaction(item, outcome, seconds)
    m.heartbeat_succeeded(at=1_700_000_000.0)
    return m


def test_device_and_supply_series_follow_the_statuses(full_metrics):
    m = full_metrics
    assert value(m, "kiosk_device_up", device="id_card") == 1
    assert value(m, "kiosk_device_up", device="camera") == 0
    assert value(m, "kiosk_device_state", device="camera", state="offline") == 1
    assert value(m, "kiosk_device_state", device="camera", state="online") == 0
    assert sum(v for (n, labels), v in samples(m).items()
               if n == "kiosk_device_state" and ("device", "id_card") in labels) == 1  # exactly one state
    assert value(m, "kiosk_supply_state", supply="receipt_printer_paper", state="low") == 1
    assert value(m, "kiosk_supply_state", supply="receipt_printer_paper", state="ok") == 0
    assert value(m, "kiosk_supply_state", supply="a4_printer_paper", state="ok") == 1
    assert value(m, "kiosk_transactions_total", item="H01", outcome="completed") == 1
    assert value(m, "kiosk_transactions_total", item="H01", outcome="failed") == 1
    assert value(m, "kiosk_transaction_duration_seconds_count") == 3
    assert value(m, "kiosk_transaction_duration_seconds_sum") == pytest.approx(52.5)
    assert value(m, "kiosk_heartbeat_last_success_timestamp_seconds") == 1_700_000_000.0
    assert value(m, "kiosk_build_info", version="9.9.9", terminal="JN-DEMO-0001") == 1


def test_exposition_passes_promtool_check_metrics(full_metrics):
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=full_metrics.exposition(), capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout + proc.stderr == b""  # promtool prints lint problems even when it exits 0


def test_json_form_statuses_and_removed_devices(tmp_path):
    m = KioskMetrics()
    m.update_devices({"receipt_printer": {"state": "user_error", "supplies": {"paper": "out"}, "conditions": ["cover_open"]},
                      "scanner": status(DeviceState.ONLINE)})
    assert value(m, "kiosk_device_state", device="receipt_printer", state="user_error") == 1
    assert value(m, "kiosk_supply_state", supply="receipt_printer_paper", state="out") == 1
    m.update_devices({"scanner": status(DeviceState.BUSY, {"paper": SupplyState.OK})})
    names = {(n, dict(labels).get("device"), dict(labels).get("supply")) for n, labels in samples(m)}
    assert ("kiosk_device_up", "receipt_printer", None) not in names
    assert ("kiosk_supply_state", None, "receipt_printer_paper") not in names
    assert value(m, "kiosk_device_up", device="scanner") == 1  # busy still answers
    assert value(m, "kiosk_supply_state", supply="scanner_paper", state="ok") == 1


def test_unknown_outcome_is_refused():
    with pytest.raises(ValueError):
        KioskMetrics().record_transaction("H01", "exploded")


def test_two_instances_do_not_share_series():
    a, b = KioskMetrics(), KioskMetrics()
    a.record_transaction("H01", "completed")
    assert value(b, "kiosk_transactions_total", item="H01", outcome="completed") is None


def test_http_server_serves_and_a_taken_port_is_a_typed_error():
    m = KioskMetrics(terminal_id="T1")
    server = start_http_server(m, 0, addr="127.0.0.1")
    try:
        body = requests.get(server.url, timeout=5).text
        assert 'kiosk_build_info{terminal="T1"' in body
        with pytest.raises(MetricsPortInUse) as err:
            start_http_server(KioskMetrics(), server.port, addr="127.0.0.1")
        assert err.value.code == "metrics_port_in_use" and err.value.port == server.port
        assert str(server.port) in err.value.detail
    finally:
        server.stop()
    with pytest.raises(MetricsServerError):
        start_http_server(m, 70000)


def test_the_metrics_endpoint_listens_on_loopback_unless_told_otherwise(listening_addresses):
    server = start_http_server(KioskMetrics(terminal_id="T2"), 0)
    try:
        assert listening_addresses(server.port) == {"127.0.0.1"}
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.stop()
    everywhere = start_http_server(KioskMetrics(terminal_id="T3"), 0, addr="0.0.0.0")  # only when asked
    try:
        assert listening_addresses(everywhere.port) == {"0.0.0.0"}
    finally:
        everywhere.stop()


@pytest.mark.parametrize("listen, flag, expected", [
    (None, None, ("127.0.0.1", 9464)),
    (None, 9466, ("127.0.0.1", 9466)),  # --metrics-port picks the port, never the host
    ("[::1]:9500", 9466, ("::1", 9466)),
    ("0.0.0.0:9464", None, ("0.0.0.0", 9464)),
])
def test_metrics_listen_key_and_the_port_flag(listen, flag, expected):
    cfg = from_dict({"metrics": {"listen": listen}} if listen else {})
    assert cfg.metrics.address(flag) == expected
    assert cfg.metrics.remote() == (expected[0] == "0.0.0.0")


@pytest.mark.parametrize("listen", ["9464", "127.0.0.1", "127.0.0.1:99999", "metrics.example:9464", ":9464", ""])
def test_a_bad_metrics_listen_names_the_key(listen):
    with pytest.raises(ConfigError) as err:
        from_dict({"metrics": {"listen": listen}})
    assert err.value.key == "metrics.listen" and err.value.value == listen


def test_production_listens_beyond_loopback_only_when_asked():
    production = {"profile": "production",
                  "backend": {"url": "https://backend.example", "hmac_secret": "enrolled", "ca_file": "/c/ca.pem",
                              "client_cert_file": "/c/t.crt", "client_key_file": "/c/t.key",
                              "public_key": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="},
                  "devices": {name: {"enabled": False} for name in DEVICE_NAMES}}
    assert not from_dict(production).metrics.remote()
    with pytest.raises(ConfigError) as err:
        from_dict({**production, "metrics": {"listen": "0.0.0.0:9464"}})
    assert err.value.key == "metrics.listen" and err.value.value == "0.0.0.0:9464"
    assert "allow_remote" in str(err.value)
    asked = {**production, "metrics": {"listen": "0.0.0.0:9464", "allow_remote": True}}
    assert from_dict(asked).metrics.address() == ("0.0.0.0", 9464)
    assert from_dict({"metrics": {"listen": "0.0.0.0:9464"}}).metrics.remote()  # demo: configured is asked


def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "SUCCESS: 15 rules found" in check.stdout, check.stdout + check.stderr
    tests = subprocess.run([PROMTOOL, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def _minutes(text: str) -> int:
    m = re.fullmatch(r"(\d+)([mh])", text)
    assert m, f"durations in the rules are whole minutes or hours, got {text!r}"
    return int(m.group(1)) * (60 if m.group(2) == "h" else 1)


def _shifted(text: str, delta: int) -> str:
    """A `for` moved by ``delta`` minutes."""
    return f"{max(_minutes(text) + delta, 0)}m"


def test_every_for_duration_is_pinned_by_the_rule_tests(tmp_path):
    """Moving any alert's `for` one minute either way must make the rule tests fail."""
    rules = yaml.safe_load(RULES.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {"KioskDown", "KioskHeartbeatMissing", "KioskPaperLow", "KioskPaperOut",
                                            "KioskDeviceFaulty", "KioskTransactionFailureRate", "KioskDiskFull",
                                            "KioskPaidNotDelivered", "KioskRefundFailed", "KioskOutOfService",
                                            "KioskBackendUnreachable", "KioskItemsUnavailable",
                                            "KioskCertificateExpiring", "KioskRestarting", "KioskUpdateRolledBack"}
    tested = {t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"]}
    assert tested == {a["alert"] for a in alerts}
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    for alert in alerts:
        for delta in (-1, 1):
            mutated = yaml.safe_load(RULES.read_text())
            for g in mutated["groups"]:
                for r in g["rules"]:
                    if r.get("alert") == alert["alert"]:
                        r["for"] = _shifted(r["for"], delta)
            (tmp_path / RULES.name).write_text(yaml.safe_dump(mutated, allow_unicode=True))
            proc = subprocess.run([PROMTOOL, "test", "rules", str(tmp_path / RULE_TESTS.name)],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode != 0, f"{alert['alert']} for {alert['for']} {delta:+d}m is not pinned"


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_uses_only_metrics_the_kiosk_exports(full_metrics):
    from kiosk.services.health import _gauges_for

    _gauges_for(full_metrics)  # the health monitor's gauges (backend, service, disk), as a running kiosk has
    exported = {family.name for family in text_string_to_metric_families(full_metrics.exposition().decode())}
    exported |= {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    used = {name for e in _dashboard_exprs() for name in re.findall(r"\b(kiosk_[a-z_]+)\b", e)}
    assert used and used <= exported, used - exported
    assert {"kiosk_device_state", "kiosk_supply_state", "kiosk_transactions_total",
            "kiosk_heartbeat_last_success_timestamp_seconds", "kiosk_build_info"} <= used


# --- a real Prometheus server ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last answer: {last!r}")


@pytest.fixture
def exporter():
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("metrics_exporter.py"))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        proc.port = int(line.split()[1])
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def prometheus(tmp_path, exporter):
    port = _free_port()
    shutil.copy(RULES, tmp_path / RULES.name)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [RULES.name],
        # as prometheus.example.yml: file_sd targets carrying the terminal id as label `terminal`
        "scrape_configs": [{"job_name": "kiosk", "honor_labels": True,
                            "file_sd_configs": [{"files": ["kiosk-targets.json"], "refresh_interval": "1s"}]}],
    }))
    (tmp_path / "kiosk-targets.json").write_text(json.dumps(
        [{"targets": [f"127.0.0.1:{exporter.port}"], "labels": {"terminal": "JN-TEST-0001"}}]))
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
        try:
            return requests.get(f"{base}/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        _wait_for(ready, 30, "prometheus to be ready")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _query(base: str, expr: str) -> list[dict]:
    answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _one(base: str, expr: str) -> float | None:
    result = _query(base, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_the_supply_state_change_when_the_printer_runs_out(prometheus, exporter):
    out = 'kiosk_supply_state{job="kiosk", supply="receipt_printer_paper", state="out"}'
    ok = 'kiosk_supply_state{job="kiosk", supply="receipt_printer_paper", state="ok"}'
    _wait_for(lambda: _one(prometheus, ok) == 1.0, 30, "a scrape with paper ok")
    assert _one(prometheus, out) == 0.0
    assert _one(prometheus, 'up{job="kiosk"}') == 1.0

    exporter.stdin.write("paper_out\n")
    exporter.stdin.flush()
    assert exporter.stdout.readline().strip() == "OK paper_out"
    _wait_for(lambda: _one(prometheus, out) == 1.0, 30, "paper out to reach Prometheus")
    assert _one(prometheus, ok) == 0.0
    assert _one(prometheus, 'kiosk_device_up{job="kiosk", device="receipt_printer"}') == 1.0  # it still answers

    # the real server loaded the alert rules: paper out is pending (its `for` is 1m)
    def paper_alert():
        alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "KioskPaperOut"]
    alert = _wait_for(paper_alert, 30, "the KioskPaperOut alert")[0]
    assert alert["state"] in ("pending", "firing") and alert["labels"]["supply"] == "receipt_printer_paper"
    assert alert["labels"]["terminal"] == "JN-TEST-0001"  # the target label reaches every series and alert
    assert alert["annotations"]["summary"] == "Paper out in receipt_printer_paper at kiosk JN-TEST-0001"
    assert _one(prometheus, 'up{job="kiosk", terminal="JN-TEST-0001"}') == 1.0
    assert _one(prometheus, 'kiosk_build_info{job="kiosk", terminal="JN-TEST-0001"}') == 1.0  # not exported_terminal

    # every dashboard expression is valid PromQL on the real server
    for expr in _dashboard_exprs():
        _query(prometheus, expr.replace("$terminal", ".*").replace("$__rate_interval", "1m"))


def test_paid_but_undelivered_and_failed_refunds_are_counted_from_zero():
    m = KioskMetrics()
    # Unlabelled, so both series exist before the first case and an alert sees it as an increase.
    assert value(m, "kiosk_paid_undelivered_total") == 0 and value(m, "kiosk_refund_failed_total") == 0
    m.record_alarm("paid_undelivered")
    m.record_alarm("refund_failed", 2)
    assert value(m, "kiosk_paid_undelivered_total") == 1 and value(m, "kiosk_refund_failed_total") == 2
    with pytest.raises(ValueError):
        m.record_alarm("lost_keys")
    rules = yaml.safe_load(RULES.read_text())
    exprs = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert "kiosk_paid_undelivered_total" in exprs["KioskPaidNotDelivered"]
    assert "kiosk_refund_failed_total" in exprs["KioskRefundFailed"]


def test_process_metrics_and_no_created_series(full_metrics):
    text = full_metrics.exposition().decode()
    start = value(full_metrics, "process_start_time_seconds")
    assert start is not None and time.time() - 3600 < start <= time.time()  # a restart moves it
    assert value(full_metrics, "process_resident_memory_bytes") > 0
    assert "_created" not in text


def test_counters_exist_at_zero_from_the_start():
    m = KioskMetrics(terminal_id="JN-DEMO-0001")
    m.declare_items(["H01", "T03"])
    for item in ("H01", "T03"):
        for outcome in ("completed", "refused", "cancelled", "failed"):
            assert value(m, "kiosk_transactions_total", item=item, outcome=outcome) == 0
    for rating in ("satisfied", "basically_satisfied", "dissatisfied"):
        assert value(m, "kiosk_satisfaction_ratings_total", rating=rating) == 0
    assert value(m, "kiosk_heartbeat_failures_total") == 0
    m.record_rating("basically_satisfied")
    assert value(m, "kiosk_satisfaction_ratings_total", rating="basically_satisfied") == 1
    with pytest.raises(ValueError):
        m.record_rating("great")


def test_heartbeat_failures_and_queue_length():
    m = KioskMetrics()
    m.heartbeat_round(3, failed=True)
    m.heartbeat_round(4, failed=True)
    assert value(m, "kiosk_heartbeat_failures_total") == 2 and value(m, "kiosk_heartbeat_queue_length") == 4
    m.heartbeat_round(0, failed=False)
    assert value(m, "kiosk_heartbeat_failures_total") == 2 and value(m, "kiosk_heartbeat_queue_length") == 0


def test_paper_remaining_where_the_printer_reports_it():
    from kiosk.hardware.simulators.receipt import SimReceiptPrinter

    printer = SimReceiptPrinter("receipt_printer", {"paper_length_mm": 1000.0, "paper_low_mm": 100.0}, {})
    m = KioskMetrics()
    m.update_devices({"receipt_printer": printer.status()})
    assert value(m, "kiosk_supply_level_ratio", supply="receipt_printer_paper") == 1.0
    printer.refill(250.0)  # a roll with 250 mm on it
    m.update_devices({"receipt_printer": printer.status()})
    assert value(m, "kiosk_supply_level_ratio", supply="receipt_printer_paper") == pytest.approx(0.25)
    m.update_devices({"a4_printer": status(DeviceState.ONLINE, {"paper": SupplyState.OK})})  # reports no level
    assert value(m, "kiosk_supply_level_ratio", supply="receipt_printer_paper") is None
    assert not [k for k in samples(m) if k[0] == "kiosk_supply_level_ratio"]


def test_client_certificate_expiry(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "JN-LX-0042")])
    not_after = dt.datetime(2027, 12, 5, 12, 0, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(not_after - dt.timedelta(days=365)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "terminal.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    m = KioskMetrics()
    assert m.set_certificate(str(path)) == not_after.timestamp()
    assert value(m, "kiosk_client_certificate_expiry_timestamp_seconds") == not_after.timestamp()
    fresh = KioskMetrics()
    assert fresh.set_certificate("") is None and fresh.set_certificate(str(tmp_path / "missing.crt")) is None
    assert value(fresh, "kiosk_client_certificate_expiry_timestamp_seconds") == 0  # never set: 0, alert ignores it
