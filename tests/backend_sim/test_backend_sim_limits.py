"""What one caller may cost the simulator, tried on the real HTTP server: body size, array sizes,
idle connections (plain and TLS), connections at once."""
from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml

from kiosk.services.backend import OPENAPI_PATH
from kiosk.backend_sim import limits
from kiosk.backend_sim.server import SimServer, serve

from test_backend_sim import WANG, error_code, send, signed


@pytest.fixture
def short_idle(monkeypatch: pytest.MonkeyPatch) -> float:
    """A one-second idle timeout, so the tests need not wait the real ten."""
    monkeypatch.setattr(limits.IdleLimitedHandler, "timeout", 1.0)
    return 1.0


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def _head(url: str, path: str, headers: dict[str, str]) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {_host_port(url)[0]}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


def _status_line(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


# --- body size ---------------------------------------------------------------------------------------
def test_a_declared_200_mib_body_is_refused_before_it_is_read(sim: SimServer) -> None:
    path = "/api/v1/identity/lookup"
    with socket.create_connection(_host_port(sim.url)) as sock:
        # headers only: a server that reads the body first never answers
        sock.sendall(_head(sim.url, path, {"Content-Type": "application/json",
                                           "Content-Length": str(200 * 1024 * 1024)}))
        assert _status_line(sock).startswith(b"HTTP/1.1 413")


def test_a_chunked_body_is_cut_off_at_the_limit(sim: SimServer) -> None:
    def chunks() -> Iterator[bytes]:
        piece = b" " * 65536
        for _ in range(limits.MAX_BODY_BYTES // len(piece) + 4):
            yield piece

    resp = requests.post(f"{sim.url}/api/v1/identity/lookup", data=chunks(),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 413 and error_code(resp) == "payload_too_large"


def test_bodies_within_the_limits_still_go_through(sim: SimServer) -> None:
    resp = send(signed("POST", sim.url, "/api/v1/identity/lookup", {"id_number": WANG, "card_type": "resident"}))
    assert resp.status_code == 200
    # the photo route takes a photo-sized body: past the general limit, it reaches the schema check
    photo = {"id_number": WANG, "image_b64": "A" * (limits.MAX_BODY_BYTES + 1000)}
    resp = send(signed("POST", sim.url, "/api/v1/identity/face", photo))
    assert resp.status_code != 413


# --- array sizes -------------------------------------------------------------------------------------
def _arrays(node: Any, where: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "array" or (isinstance(kind, list) and "array" in kind) or "items" in node:
            yield where, node
        for key, value in node.items():
            yield from _arrays(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _arrays(value, f"{where}/{i}")


def test_every_array_in_the_api_document_has_a_maximum_size() -> None:
    document = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    found = list(_arrays(document))
    assert len(found) >= 10  # the walk does see the document's arrays
    assert [where for where, schema in found if "maxItems" not in schema] == []


def test_an_array_over_its_maximum_is_a_400_on_the_wire(sim: SimServer) -> None:
    too_many = {"item_id": "G05", "fields": {"text": "x", "tags": ["t"] * 65}}
    resp = send(signed("POST", sim.url, "/api/v1/operations/no_such_operation", too_many))
    assert resp.status_code == 400 and error_code(resp) == "bad_request" and "too long" in resp.json()["error"]["detail"]
    resp = send(signed("POST", sim.url, "/api/v1/payments/reconcile",
                       {"order_ids": [f"PO{i:08d}" for i in range(501)]}))
    assert resp.status_code == 400 and error_code(resp) == "bad_request"


# --- idle connections and connection count -------------------------------------------------------------
def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:  # reset: closed as well
        return True


def _request_threads(besides: frozenset[threading.Thread] = frozenset()) -> int:
    return sum("process_request_thread" in t.name and t not in besides for t in threading.enumerate())


def test_half_sent_requests_are_closed_after_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # three seconds, not the fixture's one: on a busy machine thirty threads can take over a second to start
    idle = 3.0
    monkeypatch.setattr(limits.IdleLimitedHandler, "timeout", idle)
    server = serve("127.0.0.1", 0)
    try:
        before = frozenset(threading.enumerate())
        socks = []
        for _ in range(30):
            s = socket.create_connection(_host_port(server.url))
            s.sendall(b"POST /api/v1/identity/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"id")
            socks.append(s)
        deadline = time.monotonic() + idle - 0.5
        while _request_threads(before) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _request_threads(before) == 30  # each holds a thread for now
        assert all(_closed_by_server(s, idle + 4) for s in socks)
        deadline = time.monotonic() + 5
        while _request_threads(before) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _request_threads(before) == 0
        for s in socks:
            s.close()
        assert requests.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_connections_past_the_cap_are_closed_and_the_rest_still_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_CONNECTIONS", 5)
    server = serve("127.0.0.1", 0)
    try:
        held = [socket.create_connection(_host_port(server.url)) for _ in range(5)]
        time.sleep(0.2)
        extra = socket.create_connection(_host_port(server.url))
        assert _closed_by_server(extra, 3)  # refused at once, long before the 10 s idle timeout
        extra.close()
        for s in held:
            s.close()
        time.sleep(0.3)
        assert requests.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_a_silent_client_does_not_stop_the_tls_listener(short_idle: float, tmp_path: Path) -> None:
    server = serve("127.0.0.1", 0, tls=True)
    try:
        ca = tmp_path / "ca.pem"
        ca.write_bytes(server.ca_pem if isinstance(server.ca_pem, bytes) else server.ca_pem.encode())
        silent = socket.create_connection(_host_port(server.enroll_url))  # connects, never says hello
        time.sleep(0.2)
        # served while the silent one is still connected (the handshake used to run in the accepting thread)
        assert requests.get(f"{server.enroll_url}/api/v1/health", verify=str(ca), timeout=5).status_code == 200
        assert _closed_by_server(silent, short_idle + 4)  # and the silent one is let go
        silent.close()
        ctx = ssl.create_default_context(cafile=str(ca))
        with socket.create_connection(_host_port(server.enroll_url)) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # half a request, over TLS
            assert _closed_by_server(tls, short_idle + 4)
    finally:
        server.stop()
