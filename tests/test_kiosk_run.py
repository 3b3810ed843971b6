"""`kiosk run --headless` as a real process: Prometheus scraping it, remote restart, a taken metrics port.

The kiosk talks to a backend simulator started here (so the test can queue remote commands)
and to a virtual ESC/POS network printer (a TCP server speaking DLE EOT status) whose paper
the test takes away: the kiosk finds out by polling the printer, as it would a real one.
Every process started here is stopped by its PID.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
import yaml

from kiosk import __version__ as kiosk_version
from kiosk.config import DEMO_TERMINAL_ID
from kiosk.hardware.simulators.escpos_network import VirtualEscposPrinter
from kiosk.backend_sim.server import SimServer
from kiosk.services.maintenance_ops import RESTART_EXIT_STATUS

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "provisioning" / "monitoring" / "kiosk-alerts.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PAPER = 'kiosk_supply_state{{job="kiosk", supply="receipt_printer_paper", state="{state}"}}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last answer: {last!r}")


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


@pytest.fixture
def printer() -> Iterator[VirtualEscposPrinter]:
    vp = VirtualEscposPrinter().start()
    try:
        yield vp
    finally:
        vp.stop()


def _config(tmp_path: Path, sim: SimServer, printer: VirtualEscposPrinter) -> Path:
    state = tmp_path / "state"
    path = tmp_path / "kiosk.toml"
    path.write_text(f"""
[backend]
url = "{sim.url}"
[paths]
state_dir = "{state}"
[ui]
width = 540
height = 960
[upkeep]
health_interval_s = 1
[heartbeat]
interval_s = 1
[devices.receipt_printer]
driver = "network"
options = {{ printer = "{printer.spec}" }}
[devices.a4_printer]
driver = "sim"
options = {{ output_dir = "{tmp_path / 'tray'}" }}
""")
    return path


def _kiosk(config: Path, log: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    env["KIVY_HOME"] = str(config.parent / "kivy")
    return subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(config), "run", "--headless", *extra],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=config.parent)


def _heartbeats(sim: SimServer) -> list[Any]:
    answer = requests.get(f"{sim.url}/api/v1/sim/heartbeats", params={"terminal_id": DEMO_TERMINAL_ID}, timeout=5)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    procs: list[subprocess.Popen] = []

    def start(target_port: int) -> str:
        port = _free_port()
        work = tmp_path / "prometheus"
        work.mkdir()
        shutil.copy(RULES, work / RULES.name)
        (work / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [RULES.name],
            "scrape_configs": [{"job_name": "kiosk", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
        }))
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=(work / "prometheus.log").open("w"), stderr=subprocess.STDOUT, cwd=work)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, (work / "prometheus.log").read_text()[-2000:]
            try:
                return requests.get(f"{base}/-/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        _wait_for(ready, 30, "prometheus to be ready")
        return base

    try:
        yield start
    finally:
        for proc in procs:
            _stop(proc)


def _one(base: str, expr: str) -> float | None:
    answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_the_running_kiosks_printer_run_out_and_a_remote_restart_exits_for_systemd(
        tmp_path: Path, fresh_sim: SimServer, printer: VirtualEscposPrinter,
        prometheus_for: Callable[[int], str], listening_addresses: Callable[[int], set[str]]) -> None:
    metrics_port = _free_port()
    log = tmp_path / "kiosk.out"
    kiosk = _kiosk(_config(tmp_path, fresh_sim, printer), log, "--metrics-port", str(metrics_port))
    try:
        def serving() -> bool:
            assert kiosk.poll() is None, log.read_text()[-3000:]
            try:
                return "kiosk_supply_state" in requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1).text
            except requests.ConnectionError:
                return False

        _wait_for(serving, 60, "the kiosk's metrics endpoint")
        assert listening_addresses(metrics_port) == {"127.0.0.1"}  # --metrics-port alone never opens it wider
        prom = prometheus_for(metrics_port)
        _wait_for(lambda: _one(prom, PAPER.format(state="ok")) == 1.0, 30, "a scrape with the paper ok")
        assert _one(prom, PAPER.format(state="out")) == 0.0
        printer.set_state(paper="out")  # the roll ends in the printer; the kiosk polls it
        _wait_for(lambda: _one(prom, PAPER.format(state="out")) == 1.0, 30, "paper out to reach Prometheus")
        assert _one(prom, PAPER.format(state="ok")) == 0.0
        assert _one(prom, 'kiosk_heartbeat_last_success_timestamp_seconds{job="kiosk"}') > 0
        # The heartbeats also told the backend; then a remote restart ends the process with the
        # status systemd's Restart=on-failure starts it again on.
        _wait_for(lambda: any(h["heartbeat"]["devices"]["receipt_printer"]["supplies"].get("paper") == "out"
                              for h in _heartbeats(fresh_sim)), 30, "a heartbeat reporting the paper out")
        requests.post(f"{fresh_sim.url}/api/v1/sim/terminals/{DEMO_TERMINAL_ID}/commands", json={"kind": "restart"},
                      timeout=5).raise_for_status()
        kiosk.wait(timeout=60)
        assert kiosk.returncode == RESTART_EXIT_STATUS, log.read_text()[-3000:]
    finally:
        _stop(kiosk)


def test_the_metrics_listen_key_alone_serves_metrics_where_it_says(
        tmp_path: Path, fresh_sim: SimServer, printer: VirtualEscposPrinter,
        listening_addresses: Callable[[int], set[str]]) -> None:
    port = _free_port()
    config = _config(tmp_path, fresh_sim, printer)
    config.write_text(config.read_text() + f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    log = tmp_path / "kiosk.out"
    kiosk = _kiosk(config, log)
    try:
        def serving() -> bool:
            assert kiosk.poll() is None, log.read_text()[-3000:]
            try:
                return "kiosk_build_info" in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except requests.ConnectionError:
                return False

        _wait_for(serving, 60, "metrics on the configured address")
        assert listening_addresses(port) == {"127.0.0.1"}
        # the updater's last outcome shows at the next scrape, one outcome at 1, the others at 0
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert f'kiosk_release_info{{version="{kiosk_version}"}} 1.0' in text
        assert 'kiosk_update_last_outcome{outcome="rolled_back"} 0.0' in text
        (tmp_path / "state" / "update").mkdir(exist_ok=True)
        (tmp_path / "state" / "update" / "last.json").write_text(
            '{"outcome": "rolled_back", "version": "9.9.9", "reason": "kiosk_exited", "at": "2026-12-05T03:00:00+00:00"}')
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'kiosk_update_last_outcome{outcome="rolled_back"} 1.0' in text
        assert 'kiosk_update_last_outcome{outcome="installed"} 0.0' in text
        run_status = tmp_path / "state" / "run-status.json"  # what the health gate reads
        # The first writes may come before the health monitor runs (serving false), as the gate allows: on a loaded
        # machine (parallel test workers) the test read one of those. Wait, as the gate does, for serving.
        def serving_status() -> dict[str, Any] | None:
            status = json.loads(run_status.read_text()) if run_status.exists() else {}
            return status if status.get("serving") else None

        status = _wait_for(serving_status, 30, "the run status saying the kiosk serves")
        assert status["serving"] is True and status["pid"] == kiosk.pid and status["version"] == kiosk_version
        # the kiosk says where its metrics are, so the technician can give Prometheus the address
        assert f"metrics served at http://127.0.0.1:{port}/metrics ([metrics] listen 127.0.0.1:{port})" in \
            log.read_text()
    finally:
        assert _stop(kiosk) == 0, log.read_text()[-3000:]


def test_a_taken_metrics_port_leaves_the_kiosk_serving_without_metrics(
        tmp_path: Path, fresh_sim: SimServer, printer: VirtualEscposPrinter) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        log = tmp_path / "kiosk.out"
        kiosk = _kiosk(_config(tmp_path, fresh_sim, printer), log, "--metrics-port", str(port))
        try:
            _wait_for(lambda: "running without metrics" in log.read_text() or kiosk.poll() is not None, 60,
                      "the warning")
            text = log.read_text()
            warning = next(line for line in text.splitlines() if line.startswith("kiosk: warning:"))
            assert "metrics_port_in_use" in warning and f":{port} is already in use" in warning, text[-3000:]
            # Still serving: it keeps sending heartbeats after the warning.
            before = len(_heartbeats(fresh_sim))
            _wait_for(lambda: len(_heartbeats(fresh_sim)) > before, 30, "heartbeats from the kiosk")
            assert kiosk.poll() is None
        finally:
            status = _stop(kiosk)
    assert status == 0, log.read_text()[-3000:]
