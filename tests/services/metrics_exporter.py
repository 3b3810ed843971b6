"""A small exporter process for the Prometheus test: kiosk metrics fed by a simulated receipt printer.

Run as a script: serves the metrics on a free loopback port, prints ``PORT <n>``, then polls
the printer's status into the metrics every 0.1 s. Commands on stdin, one per line:
``paper_out`` (inject the fault), ``refill`` (clear it), ``quit``.
"""
from __future__ import annotations

import sys
import threading

from kiosk.hardware.simulators.receipt import SimReceiptPrinter
from kiosk.services.metrics import KioskMetrics, start_http_server


def main() -> int:
    """Serve until stdin says quit (or closes)."""
    printer = SimReceiptPrinter("receipt_printer", {}, {})
    metrics = KioskMetrics(terminal_id="JN-TEST-0001")
    metrics.heartbeat_succeeded()
    server = start_http_server(metrics, 0, addr="127.0.0.1")
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            metrics.update_devices({"receipt_printer": printer.status()})
            stop.wait(0.1)

    threading.Thread(target=poll, daemon=True).start()
    print(f"PORT {server.port}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "paper_out":
            printer.inject("paper_out", True)
        elif command == "refill":
            printer.clear("paper_out")
        elif command == "quit":
            break
        print(f"OK {command}", flush=True)
    stop.set()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
