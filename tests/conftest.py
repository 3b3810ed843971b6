"""Shared fixtures: the backend simulator as a real subprocess (`kiosk backend-sim`) and a client to it.

Kept small and generic on purpose; each test folder adds its own fixtures in its conftest.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from hypothesis import settings

# Property tests: no per-example deadline (two shared cores make timings meaningless), and
# under CI a fixed example sequence, so a run that passed here passes there; set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

from kiosk.hardware.simulators.vicc import private_pcsc_socket

# Before any PC/SC call of this process: the pcscd the tests start gets this run's own socket,
# so two test runs on one machine (CI beside a developer) never take pcscd from each other.
# An xdist worker starts a pcscd of its own but inherits the controller's PCSCLITE_CSOCK_NAME
# (the controller loads this file first): left alone, both workers' pcscd would bind one folder
# over /run/pcscd and each take the other's socket. Each worker takes its own instead.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("PCSCLITE_CSOCK_NAME", None)
private_pcsc_socket()

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.server import SimServer, serve

START_TIMEOUT_S = 20.0


class SimProcess:
    """A `kiosk backend-sim` child process: its URL, and the simulator-only controls."""

    def __init__(self, db_path: str | None = None, faults: dict[str, Any] | None = None) -> None:
        kiosk_script = Path(sys.executable).with_name("kiosk")
        cmd = [str(kiosk_script)] if kiosk_script.exists() else [sys.executable, "-m", "kiosk.cli"]
        cmd += ["backend-sim", "--host", "127.0.0.1", "--port", "0"]  # port 0: the server binds a free one
        if db_path:
            cmd += ["--db", db_path]
        if faults:
            cmd += ["--faults", json.dumps(faults)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.pid = self.proc.pid
        try:
            self.url = self._read_url()
            # With faults from the start, /health itself may fail on purpose: probe the fault-free sim path.
            self._wait_healthy("/api/v1/sim/faults" if faults else "/api/v1/health")
        except BaseException:
            self.stop()
            raise

    def _read_url(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"backend simulator did not start (exit {self.proc.poll()})")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line += os.read(self.proc.stdout.fileno(), 1)
        return line.decode().split()[-1]

    def _wait_healthy(self, probe: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{self.url}{probe}", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("backend simulator does not answer /health")
            time.sleep(0.02)

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs (``reset=True`` restores the defaults first); returns the knobs in force."""
        r = requests.post(f"{self.url}/api/v1/sim/faults", json=knobs, timeout=5)
        r.raise_for_status()
        return r.json()

    def faults(self) -> dict[str, Any]:
        """The fault knobs in force."""
        return requests.get(f"{self.url}/api/v1/sim/faults", timeout=5).json()

    def effects(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The side-effect log, oldest first."""
        r = requests.get(f"{self.url}/api/v1/sim/effects", params={"kind": kind} if kind else None, timeout=5)
        r.raise_for_status()
        return r.json()

    def pay(self, order_id: str) -> dict[str, Any]:
        """The resident's phone pays ``order_id``."""
        r = requests.post(f"{self.url}/api/v1/sim/payments/{order_id}/pay", timeout=5)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        """SIGTERM the child by its PID, SIGKILL if it lingers."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="session")
def backend_sim() -> Iterator[SimProcess]:
    """One simulator subprocess for the session. Do not change its faults: use fresh_backend_sim."""
    sim = SimProcess()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def fresh_backend_sim() -> Iterator[SimProcess]:
    """A simulator subprocess of one's own (for fault knobs, or a clean effect log)."""
    sim = SimProcess()
    try:
        yield sim
    finally:
        sim.stop()


def make_client(url: str, **overrides: Any) -> BackendClient:
    """A demo-terminal client for ``url`` with short timeouts (overridable)."""
    kwargs: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 5.0, "retries": 1, "backoff": 0.02}
    kwargs.update(overrides)
    return BackendClient(url, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(), DEMO_BACKEND_PUBLIC_KEY, **kwargs)


@pytest.fixture
def client(backend_sim: SimProcess) -> BackendClient:
    """A BackendClient (demo terminal) talking to the session's simulator."""
    return make_client(backend_sim.url)


@pytest.fixture
def make_backend_client() -> Any:
    """``make_backend_client(url, **overrides) -> BackendClient`` for a simulator of one's own."""
    return make_client


@pytest.fixture
def start_backend_sim() -> Iterator[Any]:
    """``start_backend_sim(db_path=None, faults=None) -> SimProcess``; each one started is stopped after the test."""
    started: list[SimProcess] = []

    def start(db_path: str | None = None, faults: dict[str, Any] | None = None) -> SimProcess:
        sim = SimProcess(db_path, faults)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


# --- the simulator in-process -------------------------------------------------------------
@contextlib.contextmanager
def _serving() -> Iterator[SimServer]:
    """The backend simulator in this process: real HTTP on loopback, in-memory, freshly seeded."""
    server = serve("127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """An in-process simulator for the tests of one module (a module may define its own)."""
    with _serving() as server:
        yield server


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimServer]:
    """A second module-wide simulator, for runs that would use up the first one's records."""
    with _serving() as server:
        yield server


@pytest.fixture
def fresh_sim() -> Iterator[SimServer]:
    """An in-process simulator of the test's own."""
    with _serving() as server:
        yield server


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets in LISTEN on ``port``, from /proc/net/tcp and tcp6."""
    import ipaddress

    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr_hex, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A = LISTEN
                continue
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(bytes.fromhex(addr_hex[i:i + 8])[::-1] for i in range(0, width, 8))
            found.add(str(ipaddress.ip_address(raw)))
    return found


@pytest.fixture
def listening_addresses() -> Any:
    """``listening_addresses(port) -> {address}``: where this machine listens on a TCP port."""
    return _listening_addresses


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the modules holding a slow test run first (each module's tests still together, in order).

    `make test` hands whole files to its workers (``--dist loadfile --no-loadscope-reorder``) as each one frees
    up, in collection order: a three-minute module collected last would run alone at the end while the other
    workers sit idle. A plain run keeps the collection order.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order within each group stays
