"""Serving the simulator: a real threaded HTTP server (werkzeug) in a thread, or in the foreground."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer

from kiosk.errors import ConfigError
from kiosk.backend_sim.app import SimApp, SimSettings
from kiosk.backend_sim.faults import FaultState
from kiosk.backend_sim.limits import LimitedServer
from kiosk.backend_sim.pipeline import LISTENER_KEY

log = logging.getLogger("kiosk.backend_sim")


class SimServer:
    """A running simulator; ``url`` is the server root (the API is under ``url + "/api/v1"``).

    With TLS, ``url`` is the mutual-TLS listener (client certificate from the simulator's CA
    required in the handshake) and ``enroll_url`` a second, server-authenticated listener that
    serves only enrollment and health (a terminal has no certificate before it enrolls);
    ``ca_pem`` is the CA both listeners' certificates chain to. Without TLS both URLs are the same.
    """

    def __init__(self, httpd: BaseWSGIServer, app: SimApp, enroll_httpd: BaseWSGIServer | None = None) -> None:
        self._servers = [httpd] + ([enroll_httpd] if enroll_httpd is not None else [])
        self.app = app
        self.host = httpd.server_address[0]
        self.port = int(httpd.server_address[1])
        self.tls = enroll_httpd is not None
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self.enroll_url = (f"https://{self.host}:{enroll_httpd.server_address[1]}" if enroll_httpd is not None
                           else self.url)
        self.ca_pem = app.ca.cert_pem
        self._threads = [threading.Thread(target=s.serve_forever, name="backend-sim", daemon=True)
                         for s in self._servers]

    def start(self) -> "SimServer":
        """Start answering in background threads."""
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the database."""
        for s in self._servers:
            s.shutdown()
            s.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self.app.db.close()

    def __enter__(self) -> "SimServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _on_listener(app: Any, name: str) -> Any:
    """The WSGI app with every request marked as having come in on listener ``name``."""
    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        environ[LISTENER_KEY] = name
        return app(environ, start_response)
    return wsgi


def serve(host: str = "127.0.0.1", port: int = 0, db_path: str | None = None,
          faults: dict[str, Any] | None = None, *, tls: bool = False, enroll_port: int = 0,
          **settings: Any) -> SimServer:
    """Start the simulator on ``host:port`` (0 = a free port) and return it running.

    ``db_path`` None gives a fresh in-memory database; ``faults`` sets fault knobs; ``tls``
    serves HTTPS with client certificates required, plus an enrollment listener on
    ``enroll_port``; further keyword arguments are :class:`SimSettings` fields (terminals,
    order_ttl_s, max_skew_s, idempotency_window_s).
    """
    app = SimApp(SimSettings(db_path=db_path, faults=faults, **settings))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
    enroll_httpd = None
    try:
        ctx = app.ca.server_context(require_client_cert=True, hosts=hosts) if tls else None
        # Bounded: body size, idle time, connections at once, TLS handshakes off the accepting thread (limits.py).
        httpd = LimitedServer(host, port, _on_listener(app.flask, "api"), ssl_context=ctx)
        httpd.daemon_threads = True  # a request stalled by a timeout fault must not hold up shutdown
        if tls:
            enroll_ctx = app.ca.server_context(require_client_cert=False, hosts=hosts)
            try:
                enroll_httpd = LimitedServer(host, enroll_port, _on_listener(app.flask, "enrollment"),
                                             ssl_context=enroll_ctx)
            except BaseException:
                httpd.server_close()
                raise
            enroll_httpd.daemon_threads = True
    except BaseException:
        app.db.close()
        raise
    server = SimServer(httpd, app, enroll_httpd)
    app.api_url = server.url if tls else None
    names = None if host in ("0.0.0.0", "::", "") else frozenset(h.lower() for h in hosts)
    app.listeners = {"api": (names, server.port)}
    if enroll_httpd is not None:
        app.listeners["enrollment"] = (names, int(enroll_httpd.server_address[1]))
    return server.start()


def operator_guide(server: SimServer, db_path: str | None) -> str:
    """What an operator does next: the CA to hand to technicians, how to issue a code, where the fleet page is."""
    if not server.tls:
        return (f"fleet page: {server.url}/fleet (loopback only; ?lang=en for English)\n"
                f"issue an enrollment code: curl -X POST -H 'content-type: application/json' "
                f"-d '{{\"terminal_id\": \"JN-LX-0042\"}}' {server.url}/api/v1/sim/enrollment-codes")
    folder = Path(db_path).resolve().parent if db_path else Path(tempfile.mkdtemp(prefix="kiosk-backend-sim-"))
    ca_path = folder / "backend-sim-ca.pem"
    ca_path.write_bytes(server.ca_pem)
    enroll = server.enroll_url
    return "\n".join([
        f"enrollment listener on {enroll} (no client certificate needed; {server.url} is the API port, which "
        "requires one)",
        f"CA certificate for technicians (--ca-file): {ca_path}",
        f"issue an enrollment code: curl --cacert {ca_path} -X POST -H 'content-type: application/json' "
        f"-d '{{\"terminal_id\": \"JN-LX-0042\"}}' {enroll}/api/v1/sim/enrollment-codes",
        f"then on the terminal: kiosk-provision enroll --backend {enroll} --code CODE --ca-file {ca_path}",
        f"fleet page: {enroll}/fleet (loopback only; ?lang=en for English)",
    ])


def cli_backend_sim(args: argparse.Namespace) -> int:
    """`kiosk backend-sim --host H --port P [--db FILE]`: serve until SIGTERM or SIGINT."""
    faults = None
    if getattr(args, "faults", None):
        try:
            faults = json.loads(args.faults)
            if not isinstance(faults, dict):
                raise ValueError("not an object")
            FaultState(faults)  # reject unknown knobs before binding the port
        except ValueError as exc:
            raise ConfigError(f"--faults must be a JSON object of fault knobs: {exc}", key="--faults",
                              value=args.faults) from None
    server = serve(args.host, args.port, db_path=args.db, faults=faults, tls=bool(getattr(args, "tls", False)),
                   enroll_port=int(getattr(args, "enroll_port", 0) or 0),
                   update_repo=getattr(args, "update_repo", None))
    done = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"backend simulator listening on {server.url}", flush=True)
    if getattr(args, "update_repo", None):
        print(f"update repository {args.update_repo} served at {server.url}/updates", flush=True)
    print(operator_guide(server, args.db), flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    print("backend simulator stopped", file=sys.stderr, flush=True)
    return 0
