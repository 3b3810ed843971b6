"""Backend figures: simulator start-up, and signed round trips per second over loopback HTTP.

Each round trip is the full path a kiosk call takes: sign, send, the simulator's signature,
nonce, OpenAPI request and response checks and SQLite transaction, then the adapter's
response-signature and OpenAPI checks. One client thread, then four in parallel, then on a
database file (each signed call commits its nonce there).
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import requests

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.services import signing
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.server import serve

WANG = "37010219850315123X"


def _client(url: str) -> BackendClient:
    return BackendClient(url, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(), DEMO_BACKEND_PUBLIC_KEY, 2, 10, 0, 0)


def _rate(label: str, fn: Callable[[], object], n: int, threads: int = 1) -> None:
    def work() -> None:
        for _ in range(n // threads):
            fn()

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    print(f"   {label:<46} {n / elapsed:>9,.0f} /s   ({elapsed / n * 1e3:,.2f} ms each)")


def _startup_seconds() -> float:
    """Wall time from spawning `kiosk backend-sim` to its first /health answer."""
    script = Path(sys.executable).with_name("kiosk")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "kiosk.cli"]
    started = time.perf_counter()
    proc = subprocess.Popen([*cmd, "backend-sim", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            select.select([proc.stdout], [], [], 20)
            line += os.read(proc.stdout.fileno(), 1)
        url = line.decode().split()[-1]
        while True:
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).ok:
                    return time.perf_counter() - started
            except requests.RequestException:
                time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _big_post_memory(size: int = 200 * 1024 * 1024) -> tuple[float, float, int]:
    """(RSS before, peak RSS, HTTP status) of a `kiosk backend-sim` sent one unauthenticated ``size``-byte POST."""
    import socket

    script = Path(sys.executable).with_name("kiosk")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "kiosk.cli"]
    proc = subprocess.Popen([*cmd, "backend-sim", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            select.select([proc.stdout], [], [], 20)
            line += os.read(proc.stdout.fileno(), 1)
        url = line.decode().split()[-1]
        while True:
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.01)
        before = _mib(proc.pid, "VmRSS")
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST /api/v1/identity/lookup HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                         f"\r\nContent-Length: {size}\r\n\r\n".encode())
            chunk, sent = b" " * (1 << 20), 0
            try:
                while sent < size:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:  # the server closed early: it refused the body
                pass
            try:
                status = int(sock.recv(64).split()[1])
            except (OSError, IndexError, ValueError):
                status = 0
        time.sleep(0.5)
        return before, _mib(proc.pid, "VmHWM"), status
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def main() -> None:
    """Print the figures."""
    print("backend (signed HTTP on loopback, simulator in-process)")
    samples = sorted(_startup_seconds() for _ in range(3))
    print(f"   {'simulator start to first /health (median of 3)':<46} {samples[1]:>9.2f} s")
    before, peak, status = _big_post_memory()
    print(f"   {'200 MiB unauthenticated POST: RSS before / peak':<46} {before:>6.0f} / {peak:.0f} MiB (HTTP {status})")
    n = 2000
    parts = signing.RequestParts("POST", "127.0.0.1:8740", "/api/v1/identity/lookup", b'{"id_number":"x"}',
                                 "application/json", "bench-0000000001")
    started = time.perf_counter()
    for _ in range(n):
        signing.sign_request(b"secret", parts)
    print(f"   {'sign_request alone':<46} {n / (time.perf_counter() - started):>9,.0f} /s")
    sim = serve("127.0.0.1", 0)
    try:
        client = _client(sim.url)
        client.health()  # warm up
        _rate("health (GET)", client.health, 200)
        _rate("identity lookup (POST, idempotency key)", lambda: client.lookup_identity(WANG), 200)
        _rate("create payment order (POST, one effect each)",
              lambda: client.create_order("T03", 100, "BENCH", "bench", idempotency_key=uuid.uuid4().hex), 200)
        clients = [_client(sim.url) for _ in range(4)]
        lock = threading.Lock()
        counter = iter(range(10**9))

        def parallel_lookup() -> None:
            with lock:
                c = clients[next(counter) % 4]
            c.lookup_identity(WANG)

        _rate("identity lookup, 4 client threads", parallel_lookup, 400, threads=4)
    finally:
        sim.stop()
    # On a database file (as the embedded simulator runs), every signed call also commits its
    # nonce, so a captured request stays refused after a restart: what that costs.
    with tempfile.TemporaryDirectory() as folder:
        sim = serve("127.0.0.1", 0, db_path=str(Path(folder) / "sim.sqlite3"))
        try:
            client = _client(sim.url)
            client.health()
            _rate("health (GET), database file", client.health, 200)
            _rate("identity lookup (POST), database file", lambda: client.lookup_identity(WANG), 200)
        finally:
            sim.stop()


if __name__ == "__main__":
    main()
