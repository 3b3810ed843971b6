"""Serving the simulator: a real threaded HTTP server (werkzeug) in a thread, or in the foreground."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kiosk.errors import ConfigError

if TYPE_CHECKING:  # werkzeug, Flask and the simulator proper load where it is built: off the kiosk's first frame (bind)
    from werkzeug.serving import BaseWSGIServer

    from kiosk.backend_sim.app import SimApp

log = logging.getLogger("kiosk.backend_sim")

READY_TIMEOUT_S = 60.0  # a simulator still unbuilt after this is stuck (a locked database)


class SimServer:
    """A running simulator; ``url`` is the server root (the API is under ``url + "/api/v1"``).

    With TLS, ``url`` is the mutual-TLS listener (client certificate from the simulator's CA
    required in the handshake) and ``enroll_url`` a second, server-authenticated listener that
    serves only enrollment and health (a terminal has no certificate before it enrolls);
    ``ca_pem`` is the CA both listeners' certificates chain to. Without TLS both URLs are the same.

    Made by :func:`bind`, only a plain socket listens (``url`` known) before the application and its HTTP
    server exist; ``app`` and ``ca_pem`` then build it if nobody has yet, and wait until it is built.
    """

    def __init__(self, httpd: BaseWSGIServer | socket.socket, app: SimApp | None,
                 enroll_httpd: BaseWSGIServer | None = None) -> None:
        # bind() hands over a bare listening socket: werkzeug's server is made on it when the simulator is built.
        self._listener = httpd if isinstance(httpd, socket.socket) else None
        self._servers: list[BaseWSGIServer] = [] if self._listener is not None else (
            [httpd] + ([enroll_httpd] if enroll_httpd is not None else []))
        self._app = app
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._builder: threading.Thread | None = None
        self._build_lock = threading.Lock()
        self._pending: tuple[str, dict[str, Any]] | None = None  # set by bind(): what the builder makes
        address = httpd.getsockname() if isinstance(httpd, socket.socket) else httpd.server_address
        self.host = address[0]
        self.port = int(address[1])
        self.tls = enroll_httpd is not None
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self.enroll_url = (f"https://{self.host}:{enroll_httpd.server_address[1]}" if enroll_httpd is not None
                           else self.url)
        self._threads: list[threading.Thread] = []
        self._serving = False

    @property
    def app(self) -> SimApp:
        """The simulator's application (built now if need be). Raises ConfigError when it could not be built."""
        self.build_in_background()
        self.wait_ready()
        assert self._app is not None
        return self._app

    @property
    def ca_pem(self) -> bytes:
        """The simulator CA's certificate (PEM)."""
        return self.app.ca.cert_pem

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> "SimServer":
        """Wait until the simulator answers requests. Raises ConfigError when it could not start or took too long."""
        if not self._ready.wait(timeout):
            raise ConfigError(f"the backend simulator did not start in {timeout:.0f} s", key="backend.url",
                              value="embedded")
        if self._failure is not None:
            raise ConfigError(f"the backend simulator did not start: {self._failure}", key="backend.url",
                              value="embedded") from self._failure
        return self

    def start(self) -> "SimServer":
        """Start answering in background threads."""
        self._threads = [threading.Thread(target=s.serve_forever, name="backend-sim", daemon=True)
                         for s in self._servers]
        for t in self._threads:
            t.start()
        self._serving = True
        self._ready.set()
        return self

    def stop(self) -> None:
        """Stop answering and close the database."""
        with self._build_lock:
            if self._pending is not None and self._builder is None:  # stopped before anyone needed it
                self._failure = ConfigError("the backend simulator was stopped before it was built",
                                            key="backend.url", value="embedded")
                self._ready.set()
            self._pending = None  # nothing is left to build after the stop
        if self._builder is not None:
            self._builder.join()  # a stop during the build waits for the database it would leave open
        for s in self._servers:
            if self._serving:
                s.shutdown()  # blocks for good on a server whose loop never ran
            s.server_close()
        if self._listener is not None:
            self._listener.close()  # unbuilt: callers waiting in its queue are refused
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=5)
        if self._app is not None:
            self._app.db.close()

    def build_in_background(self) -> "SimServer":
        """Build the simulator of :func:`bind` in a thread, then serve; at most once, and a no-op once built."""
        with self._build_lock:
            if self._pending is None or self._builder is not None:
                return self
            host, settings = self._pending
            self._builder = threading.Thread(target=self._build_and_start, args=(host, settings),
                                             name="backend-sim-start", daemon=True)
            self._builder.start()
        return self

    def ensure_started(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Build it if nobody asked yet and wait until it serves (or failed: its closed port then refuses calls)."""
        if not self._ready.is_set():
            self.build_in_background()
            self._ready.wait(timeout)

    def _build_and_start(self, host: str, settings: dict[str, Any]) -> None:
        """In the builder thread: make the application, then serve the requests queued meanwhile."""
        from kiosk.backend_sim.app import SimApp, SimSettings

        try:
            app = SimApp(SimSettings(**settings))
            self._servers = [_limited_server(host, self.port, fd=self._listener.fileno() if self._listener else None)]
        except BaseException as exc:  # the kiosk reports the backend down; wait_ready() says why
            log.error("backend simulator did not start: %s", exc)
            self._failure = exc
            for s in self._servers:
                s.server_close()
            if self._listener is not None:
                self._listener.close()  # queued and later callers are refused at once, not left to time out
            self._ready.set()
            return
        if self._listener is not None:
            self._listener.close()  # the server holds its own descriptor of the same socket
            self._listener = None
        self._app = app
        _deliver_to(app, self, host)
        self.start()

    def __enter__(self) -> "SimServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _on_listener(app: Any, name: str) -> Any:
    """The WSGI app with every request marked as having come in on listener ``name``."""
    from kiosk.backend_sim.pipeline import LISTENER_KEY

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
    from kiosk.backend_sim.app import SimApp, SimSettings

    app = SimApp(SimSettings(db_path=db_path, faults=faults, **settings))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
    enroll_httpd = None
    try:
        ctx = app.ca.server_context(require_client_cert=True, hosts=hosts) if tls else None
        httpd = _limited_server(host, port, ssl_context=ctx)
        if tls:
            enroll_ctx = app.ca.server_context(require_client_cert=False, hosts=hosts)
            try:
                enroll_httpd = _limited_server(host, enroll_port, ssl_context=enroll_ctx)
            except BaseException:
                httpd.server_close()
                raise
    except BaseException:
        app.db.close()
        raise
    server = SimServer(httpd, app, enroll_httpd)
    _deliver_to(app, server, host)
    return server.start()


def _limited_server(host: str, port: int, *, ssl_context: Any = None, fd: int | None = None) -> BaseWSGIServer:
    """werkzeug's threaded server, bounded (body size, idle time, connections at once, TLS handshakes off the
    accepting thread: limits.py), its requests handed to the application once it is set (:class:`_Deferred`);
    on the listening socket ``fd`` when given (bind()'s), else bound to ``host:port``."""
    from kiosk.backend_sim.limits import LimitedServer

    httpd = LimitedServer(host, port, _Deferred(), ssl_context=ssl_context, fd=fd)
    httpd.daemon_threads = True  # a request stalled by a timeout fault must not hold up shutdown
    return httpd


def _deliver_to(app: SimApp, server: SimServer, host: str) -> None:
    """Point ``server``'s listeners (bound to ``host``) at ``app``; tell ``app`` the names and ports they answer on."""
    for httpd, name in zip(server._servers, ("api", "enrollment")):
        cast(_Deferred, httpd.app).target = _on_listener(app.flask, name)
    app.api_url = server.url if server.tls else None
    hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
    names = None if host in ("0.0.0.0", "::", "") else frozenset(h.lower() for h in hosts)
    app.listeners = {"api": (names, server.port)}
    if server.tls:
        app.listeners["enrollment"] = (names, int(server._servers[1].server_address[1]))


class _Deferred:
    """A WSGI application that hands each request to ``target``, set once the simulator is built."""

    def __init__(self) -> None:
        self.target: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.target(environ, start_response)


def bind(host: str = "127.0.0.1", port: int = 0, db_path: str | None = None, **settings: Any) -> SimServer:
    """The simulator's plain-HTTP listener bound on ``host:port`` (0 = a free port), the simulator not built yet.

    Its URL is known at once. Only a socket listens until then: werkzeug, Flask and the simulator are imported
    by the build, off the kiosk's first frame (~0.05 s of werkzeug's imports alone). :meth:`SimServer.build_in_background` builds it (about a third
    of a second, most of it parsing openapi.yaml) and then serves; a request sent before that
    waits in the listener's queue and is answered then. The kiosk starts its embedded
    simulator so: its first frame does not wait for it (CONTRACTS.md, "Start-up").
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    listener = socket.create_server((host, port), backlog=128)
    server = SimServer(listener, None)
    server._pending = (host, {"db_path": db_path, **settings})
    return server


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
    from kiosk.backend_sim.faults import FaultState

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
