"""Prometheus metrics of one terminal, in a registry of its own.

The control room scrapes every terminal; what it needs to act before residents notice:

- ``kiosk_device_up{device}``: 1 while the device answers (online or busy).
- ``kiosk_device_state{device,state}``: 1 for the device's current state, 0 for the others
  (the enum pattern, so alert rules select ``state="hardware_error"`` without regexes).
- ``kiosk_supply_state{supply,state}``: the same for each consumable; ``supply`` is
  ``<device>_<supply>``, e.g. ``receipt_printer_paper``.
- ``kiosk_transactions_total{item,outcome}`` and ``kiosk_transaction_duration_seconds``.
- ``kiosk_heartbeat_last_success_timestamp_seconds``: when the backend last took a heartbeat.
- ``kiosk_paid_undelivered_total``: residents who paid and whose service could not be delivered
  (its outcome unknown when they left); ``kiosk_refund_failed_total``: refunds owed that did not
  go through. Each one is a case for an operator (alert rules KioskPaidNotDelivered,
  KioskRefundFailed). No labels, so both exist at 0 from the start and the first case is an increase.
- ``kiosk_build_info{version,terminal}``.
- ``kiosk_supply_level_ratio{supply}``: how much is left (0..1), only where the device reports it
  (the receipt printer's paper length; an ESC/POS near-end sensor says only low/out).
- ``kiosk_heartbeat_failures_total`` and ``kiosk_heartbeat_queue_length``: heartbeats the backend
  did not take, and those waiting on disk for it.
- ``kiosk_client_certificate_expiry_timestamp_seconds``: when the mutual-TLS certificate ends.
- ``kiosk_satisfaction_ratings_total{rating}``: the residents' ratings, every rating from 0.
- ``process_*`` (prometheus_client's process collector): CPU, memory, open files and
  ``process_start_time_seconds``, so a restart shows as a jump.

Every counter exists from the start: each outcome of each declared item and each rating at 0,
so the first case is an increase. No ``*_created`` series (they look like gauges on a dashboard).
The terminal id reaches every series as the ``terminal`` target label that Prometheus adds
(file_sd labels, docs/OPERATIONS.md), so it is on ``up`` too, which no exporter can label.

A registry of its own (not prometheus_client's global one) so two kiosks in one test
process, or a test and the app, never share series. Nothing here carries personal data:
labels are device names, item ids and outcomes only.
"""
from __future__ import annotations

import errno
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector,
                               disable_created_metrics, generate_latest)
from prometheus_client.exposition import start_http_server as _start_http_server

from kiosk import __version__
from kiosk.errors import KioskError
from kiosk.hardware.base import USABLE_STATES, DeviceState, DeviceStatus, SupplyState

OUTCOMES = ("completed", "refused", "cancelled", "failed")
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")  # as kiosk.services.stats counts them
disable_created_metrics()  # process-wide: the kiosk's registries are the only ones in its process
# A transaction takes from half a minute (a query) to several (payment and printing).
DURATION_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0)


class MetricsPortInUse(KioskError):
    """The configured metrics port is taken by another process."""

    code = "metrics_port_in_use"
    message_en = "The monitoring port is already in use. Please ask the staff for help."
    exit_status = 69  # EX_UNAVAILABLE

    def __init__(self, port: int, addr: str) -> None:
        super().__init__(f"metrics port {addr}:{port} is already in use; choose another with --metrics-port",
                         port=port, addr=addr)
        self.port = port


class MetricsServerError(KioskError):
    """The metrics HTTP server could not start for another reason (bad address, no permission)."""

    code = "metrics_server_failed"
    exit_status = 69


def _status_parts(st: DeviceStatus | Mapping[str, Any]) -> tuple[str, Mapping[str, str]]:
    """(state, {supply: level}) from a DeviceStatus or its to_dict() form (`kiosk health --json`)."""
    if isinstance(st, DeviceStatus):
        return st.state.value, {k: v.value for k, v in st.supplies.items()}
    return str(st["state"]), {str(k): str(v) for k, v in (st.get("supplies") or {}).items()}


class KioskMetrics:
    """Every kiosk metric, registered in ``self.registry``."""

    def __init__(self, terminal_id: str = "", version: str = __version__) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.device_up = Gauge("kiosk_device_up", "1 while the device answers (online or busy).", ["device"],
                               registry=r)
        self.device_state = Gauge("kiosk_device_state", "1 for the device's current state, 0 for the others.",
                                  ["device", "state"], registry=r)
        self.supply_state = Gauge("kiosk_supply_state", "1 for the consumable's current level, 0 for the others.",
                                  ["supply", "state"], registry=r)
        self.transactions = Counter("kiosk_transactions", "Transactions finished, by item and outcome.",
                                    ["item", "outcome"], registry=r)
        self.transaction_duration = Histogram("kiosk_transaction_duration_seconds",
                                              "Time from choosing an item to the end of its transaction.",
                                              buckets=DURATION_BUCKETS, registry=r)
        self.paid_undelivered = Counter("kiosk_paid_undelivered",
                                        "Paid services not delivered when the resident left (outcome unknown).",
                                        registry=r)
        self.refund_failed = Counter("kiosk_refund_failed", "Refunds owed to a resident that did not go through.",
                                     registry=r)
        self.heartbeat_last_success = Gauge("kiosk_heartbeat_last_success_timestamp_seconds",
                                            "Unix time of the last heartbeat the backend accepted.", registry=r)
        self.build = Info("kiosk_build", "Software version and terminal id.", registry=r)
        self.build.info({"version": version, "terminal": terminal_id})
        self.supply_level = Gauge("kiosk_supply_level_ratio", "How much of the consumable is left, 0..1, where the "
                                  "device reports it.", ["supply"], registry=r)
        self.heartbeat_failures = Counter("kiosk_heartbeat_failures", "Heartbeat rounds the backend did not take.",
                                          registry=r)
        self.heartbeat_queue = Gauge("kiosk_heartbeat_queue_length", "Heartbeats kept on disk until the backend "
                                     "takes them.", registry=r)
        self.certificate_expiry = Gauge("kiosk_client_certificate_expiry_timestamp_seconds",
                                        "Unix time the terminal's client certificate (mutual TLS) expires.", registry=r)
        self.ratings = Counter("kiosk_satisfaction_ratings", "Satisfaction ratings given by residents.", ["rating"],
                               registry=r)
        for rating in RATINGS:
            self.ratings.labels(rating)
        ProcessCollector(registry=r)
        self._lock = threading.Lock()
        self._devices: set[str] = set()
        self._supplies: set[str] = set()
        self._levels: set[str] = set()

    def declare_items(self, item_ids: Any) -> None:
        """Create every (item, outcome) transaction series at 0, so dashboards and rates see them from the start."""
        for item in item_ids:
            for outcome in OUTCOMES:
                self.transactions.labels(str(item), outcome)

    def update_devices(self, statuses: Mapping[str, DeviceStatus | Mapping[str, Any]]) -> None:
        """Set the device and supply series from ``Devices.statuses()`` (or its JSON form).

        A device missing from ``statuses`` (disabled, removed) has its series removed, so no
        stale "up" outlives it.
        """
        states = [s.value for s in DeviceState]
        levels = [s.value for s in SupplyState]
        with self._lock:
            seen_devices: set[str] = set()
            seen_supplies: set[str] = set()
            seen_levels: set[str] = set()
            for device, st in statuses.items():
                state, supplies = _status_parts(st)
                seen_devices.add(device)
                for supply, level in (getattr(st, "levels", None) or {}).items():
                    seen_levels.add(f"{device}_{supply}")
                    self.supply_level.labels(f"{device}_{supply}").set(max(0.0, min(1.0, float(level))))
                self.device_up.labels(device).set(1 if state in {s.value for s in USABLE_STATES} else 0)
                for s in states:
                    self.device_state.labels(device, s).set(1 if s == state else 0)
                for supply, level in supplies.items():
                    name = f"{device}_{supply}"
                    seen_supplies.add(name)
                    for lv in levels:
                        self.supply_state.labels(name, lv).set(1 if lv == level else 0)
            for device in self._devices - seen_devices:
                self.device_up.remove(device)
                for s in states:
                    self.device_state.remove(device, s)
            for name in self._supplies - seen_supplies:
                for lv in levels:
                    self.supply_state.remove(name, lv)
            for name in self._levels - seen_levels:
                self.supply_level.remove(name)
            self._devices, self._supplies, self._levels = seen_devices, seen_supplies, seen_levels

    def record_transaction(self, item: str, outcome: str, duration_s: float | None = None) -> None:
        """Count one finished transaction (``outcome`` in OUTCOMES) and observe its duration. Raises ValueError."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        self.transactions.labels(item, outcome).inc()
        if duration_s is not None:
            self.transaction_duration.observe(max(0.0, float(duration_s)))

    def record_alarm(self, kind: str, count: int = 1) -> None:
        """Count ``count`` cases of ``kind`` (paid_undelivered | refund_failed). Raises ValueError."""
        counters = {"paid_undelivered": self.paid_undelivered, "refund_failed": self.refund_failed}
        if kind not in counters:
            raise ValueError(f"alarm kind must be one of {', '.join(counters)}, got {kind!r}")
        counters[kind].inc(count)

    def heartbeat_succeeded(self, at: float | None = None) -> None:
        """Record that the backend accepted a heartbeat now (or at ``at``, unix seconds)."""
        self.heartbeat_last_success.set(time.time() if at is None else at)

    def heartbeat_round(self, queued: int, failed: bool) -> None:
        """After a heartbeat round: how many wait on disk, and whether the backend refused or could not be reached."""
        self.heartbeat_queue.set(queued)
        if failed:
            self.heartbeat_failures.inc()

    def record_rating(self, rating: str) -> None:
        """Count one satisfaction rating (RATINGS). Raises ValueError."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
        self.ratings.labels(rating).inc()

    def set_certificate(self, cert_file: str) -> float | None:
        """Export when the client certificate in ``cert_file`` expires ('' or unreadable: nothing exported)."""
        expiry = certificate_expiry(cert_file)
        if expiry is not None:
            self.certificate_expiry.set(expiry)
        return expiry

    def exposition(self) -> bytes:
        """The text exposition format, as a scrape sees it."""
        return generate_latest(self.registry)


def certificate_expiry(cert_file: str) -> float | None:
    """The not-after time (unix seconds) of the PEM certificate at ``cert_file``; None when absent or unreadable."""
    if not cert_file:
        return None
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(open(cert_file, "rb").read())
    except (OSError, ValueError):
        return None
    return cert.not_valid_after_utc.timestamp()


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``stop()`` frees the port."""

    port: int
    addr: str
    _httpd: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.addr, self.addr)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_http_server(metrics: KioskMetrics, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``metrics`` on ``addr:port`` (0 = a free port; loopback unless ``addr`` says otherwise).

    Raises MetricsPortInUse, MetricsServerError.
    """
    if not 0 <= port <= 65535:
        raise MetricsServerError(f"metrics port must be 0..65535, got {port}", port=port)
    try:
        httpd, thread = _start_http_server(port, addr=addr, registry=metrics.registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MetricsPortInUse(port, addr) from None
        raise MetricsServerError(f"metrics server on {addr}:{port} failed: {exc.strerror or exc}",
                                 port=port, addr=addr) from None
    return MetricsServer(httpd.server_address[1], addr, httpd, thread)
