"""Serving the simulator: a real threaded HTTP server (werkzeug) in a thread, or in the foreground."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from kiosk.errors import ConfigError
from kiosk.services.backend_sim.app import SimApp, SimSettings
from kiosk.services.backend_sim.faults import FaultState

log = logging.getLogger("kiosk.backend_sim")


class SimServer:
    """A running simulator; ``url`` is the server root (the API is under ``url + "/api/v1"``)."""

    def __init__(self, httpd: BaseWSGIServer, app: SimApp) -> None:
        self._httpd = httpd
        self.app = app
        self.host = httpd.server_address[0]
        self.port = int(httpd.server_address[1])
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=httpd.serve_forever, name="backend-sim", daemon=True)

    def start(self) -> "SimServer":
        """Start answering in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the database."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self.app.db.close()

    def __enter__(self) -> "SimServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 0, db_path: str | None = None,
          faults: dict[str, Any] | None = None, **settings: Any) -> SimServer:
    """Start the simulator on ``host:port`` (0 = a free port) and return it running.

    ``db_path`` None gives a fresh in-memory database; ``faults`` sets fault knobs; further
    keyword arguments are :class:`SimSettings` fields (terminals, order_ttl_s, max_skew_s).
    """
    app = SimApp(SimSettings(db_path=db_path, faults=faults, **settings))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    httpd = make_server(host, port, app.flask, threaded=True)
    httpd.daemon_threads = True  # a request stalled by a timeout fault must not hold up shutdown
    return SimServer(httpd, app).start()


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
    server = serve(args.host, args.port, db_path=args.db, faults=faults)
    done = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"backend simulator listening on {server.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    print("backend simulator stopped", file=sys.stderr, flush=True)
    return 0
