"""`kiosk run` on a display (or --headless): the kiosk UI with its metrics server and heartbeat, until stopped."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

from kiosk.app import KioskApp, build_runtime, prepare_kivy
from kiosk.config import KioskConfig
from kiosk.errors import KioskError

log = logging.getLogger(__name__)


def run_kiosk(cfg: KioskConfig, *, headless: bool, metrics_port: int | None = None) -> int:
    """Serve residents until the app stops; its exit status (a restart asks systemd to start it again)."""
    from kivy.clock import Clock  # after kiosk.app, which sets Kivy's environment first

    prepare_kivy(cfg.ui, headless=headless)
    # Handlers before anything is served: a SIGTERM during start-up (systemd stopping a kiosk that
    # is still starting) ends it cleanly instead of killing it mid-way with its state half open.
    started: list[KioskApp] = []
    stop_asked = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        stop_asked.set()
        if started:
            Clock.schedule_once(lambda _dt: started[0].stop())

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runtime = build_runtime(cfg, defer_sim=True)  # an embedded simulator is built at the first call, after the frame
    server = metrics = None
    if cfg.metrics.enabled or metrics_port is not None:
        from kiosk.services.metrics import KioskMetrics, start_http_server

        metrics = KioskMetrics(cfg.terminal.id)
        host, port = cfg.metrics.address(metrics_port)  # the flag picks the port; the host is always [metrics] listen's
        try:
            server = start_http_server(metrics, port, addr=host)
            log.info("metrics served at %s ([metrics] listen %s)", server.url, cfg.metrics.listen)
        except KioskError as err:
            # Residents come first: a taken metrics port must not keep the kiosk down (systemd
            # would restart it in a loop). It serves without metrics; Prometheus sees the
            # target down (KioskDown alerts) and this says why.
            log.error("metrics disabled: %s", err)
            print(f"kiosk: warning: {err.code}: {err.detail or err.message('en')}; running without metrics",
                  file=sys.stderr, flush=True)
            from kiosk.services import sdnotify

            sdnotify.status(f"running without metrics: port {port} in use")
            metrics = None
        if metrics is not None:
            runtime.attach_metrics(metrics)  # the runtime feeds device state and counts transactions
            from kiosk import __version__
            from kiosk.services.update_status import UpdateCollector

            metrics.registry.register(UpdateCollector(runtime.state_dir, __version__))
    else:
        log.info("metrics not served ([metrics] enabled = false and no --metrics-port)")
    if runtime.touch is not None:  # a touch screen back: Kivy's own evdev reader is made again on its node
        from kiosk.touch_input import reattach

        runtime.touch.on_return.append(lambda path: Clock.schedule_once(lambda _dt: reattach(path)))
    app = KioskApp(runtime, cfg)
    from kiosk.services.heartbeat import HeartbeatSender

    heartbeat = HeartbeatSender.from_runtime(runtime, app.command_handler(), metrics,
                                             max_queue=cfg.heartbeat.queue_max)
    start_in_background(app, runtime, heartbeat, cfg)
    started.append(app)
    _report_run_status(runtime)
    if stop_asked.is_set():  # stopped while starting: open the window only to close it at once
        Clock.schedule_once(lambda _dt: app.stop())
    try:
        app.run()
    finally:
        heartbeat.stop()
        if app.txn is not None:
            app.end_session("cancel")
        if server is not None:
            server.stop()
        runtime.close()
    return app.exit_status


def start_in_background(app: KioskApp, runtime: Any, heartbeat: Any, cfg: KioskConfig) -> None:
    """Health polling, the spoken prompts' warm-up and the heartbeat: started once the first frame is out.

    Their threads would take turns with the UI thread while it builds the first frame (CONTRACTS.md,
    "Start-up"); the home screen shows everything available until the first poll says otherwise.
    """
    def start() -> None:
        runtime.start_monitoring()
        runtime.warm_speech()  # renders the fixed prompts in a background thread
        heartbeat.start(cfg.heartbeat.interval_s)

    app.first_frame.then(start)


def _report_run_status(runtime: Any) -> None:
    """Write ``run-status.json`` from the UI clock: the updater's health gate reads it (kiosk/services/update_status.py)."""
    from kivy.clock import Clock

    from kiosk import __version__
    from kiosk.services.update_status import RUN_STATUS_EVERY_S, RunStatusWriter

    writer = RunStatusWriter(runtime.state_dir, __version__)
    # The clock ticking proves the UI loop runs; the health monitor's thread that services were assembled.
    Clock.schedule_interval(lambda _dt: writer.write(serving=runtime.health.running), RUN_STATUS_EVERY_S)
