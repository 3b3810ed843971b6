"""The `kiosk` command. Each subcommand's work lives in the module that owns it.

Errors become a clear line on stderr (or a JSON object with --json) and the error's exit
status, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from kiosk.errors import KioskError

CONFIG_HELP = ("TOML config file (default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml when it exists, "
               "else the demo profile's defaults)")
# Commands that read the config: they say which one they used (stderr) before anything else.
CONFIG_COMMANDS = frozenset({"run", "demo", "config", "health", "stats", "selftest"})

# subcommand -> "module:function"; imported only when that subcommand runs, so
# `kiosk catalog` does not pay for Kivy.
HANDLERS: dict[str, str] = {
    "run": "kiosk.cli:cli_run",
    "demo": "kiosk.demo.command:cli_demo",
    "ui-audit": "kiosk.ui_audit.command:cli_ui_audit",
    "catalog": "kiosk.services.catalog:cli_catalog",
    "backend-sim": "kiosk.backend_sim.server:cli_backend_sim",
    "config": "kiosk.config_cli:cli_config",
    "health": "kiosk.services.health_cli:cli_health",
    "stats": "kiosk.services.stats:cli_stats",
    "selftest": "kiosk.release_selftest:cli_selftest",
    "hw idcard": "kiosk.hardware.identity_cli:cli_idcard",
    "hw passport": "kiosk.hardware.identity_cli:cli_passport",
    "hw readers": "kiosk.hardware.identity_cli:cli_readers",
    "hw scanner": "kiosk.hardware.identity_cli:cli_scanner",
    "hw receipt": "kiosk.printing_cli:cli_receipt",
    "hw a4": "kiosk.printing_cli:cli_a4",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from kiosk.cli_help import HelpFormatter, example, version_string

    p = argparse.ArgumentParser(prog="kiosk", description="24-hour self-service police kiosk",
                                formatter_class=HelpFormatter, epilog=example("kiosk run", "kiosk health --json"))
    p.add_argument("--version", action="version", version=version_string("kiosk"))
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (personal data stays masked)")
    # The same options after the subcommand; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging (personal data stays masked)")
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(  # type: ignore[method-assign]
        *a, **{"parents": [common], "formatter_class": HelpFormatter, **k})

    run = sub.add_parser("run", help="run the kiosk (demo profile by default)",
                         epilog=example("kiosk run --headless --metrics-port 9464"))
    run.add_argument("--headless", action="store_true", help="run offscreen without a window")
    run.add_argument("--metrics-port", type=int, default=None,
                     help="serve Prometheus metrics on this port (default: the port of [metrics] listen when "
                          "[metrics] enabled, else none; the host always comes from [metrics] listen)")
    run.add_argument("--out", default="demo-out", help="where the demo writes when there is no display")

    from kiosk.demo.flows import FLOW_SYNTAX

    demo = sub.add_parser("demo", help="drive the real UI headless through scripted residents",
                          epilog=FLOW_SYNTAX.rstrip() + "\n\n"
                          + example("kiosk demo --out demo-out --state demo-state --flow H01 T01",
                                    "kiosk stats --state demo-state"))
    demo.add_argument("--out", required=True, help="output folder for summary.json, screenshots, documents")
    demo.add_argument("--flow", nargs="+", default=[], metavar="FLOW", help="flows to run (default: H01), see below")
    demo.add_argument("--all", action="store_true", help="run all items of the catalog")
    demo.add_argument("--state", default=None, metavar="DIR",
                      help="keep the journal, the statistics and the backend simulator's database in DIR "
                           "(default: a temporary folder, removed at the end); a later run recovers what this "
                           "one left open, and `kiosk stats --state DIR` reports it")
    demo.add_argument("--screenshots", choices=("all", "ends"), default="all",
                      help="every screen once, or only outcomes, form complaints and notices")

    audit = sub.add_parser("ui-audit", help="render every screen offscreen (zh_CN, en; normal, care mode) and check "
                                            "targets, text size, contrast, clipping and language (exit 1 on a violation)",
                           epilog=example("kiosk ui-audit --json --out audit-gallery"))
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument("--out", default=None, metavar="DIR", help="also write a PNG of every render into DIR (default: none)")

    cat = sub.add_parser("catalog", help="list the self-service items", epilog=example("kiosk catalog --json"))
    cat.add_argument("--json", action="store_true", help="print a JSON array")

    sim = sub.add_parser("backend-sim", help="run the backend simulator alone",
                         epilog=example("kiosk backend-sim --port 8740",
                                        "kiosk backend-sim --tls --db fleet.sqlite3 --port 8443 --enroll-port 8444"))
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=int, default=8740, help="port of the API (0 = a free one)")
    sim.add_argument("--db", default=None, help="SQLite file (default: a fresh temporary one)")
    sim.add_argument("--faults", default=None,
                     help='fault knobs as JSON, e.g. \'{"latency_ms": 300, "error_rate": 0.1}\' (default: none)')
    sim.add_argument("--tls", action="store_true", help="HTTPS with client certificates required, plus an enrollment listener")
    sim.add_argument("--update-repo", default=None, metavar="DIR",
                     help="also serve this TUF repository folder (kiosk-release init) at /updates (default: none)")
    sim.add_argument("--enroll-port", type=int, default=0,
                     help="port of the enrollment listener with --tls (default: 0, a free one)")

    cfg = sub.add_parser("config", help="check a config file and print it resolved",
                         epilog=example("kiosk config --config /etc/kiosk/kiosk.toml"))
    cfg.add_argument("--json", action="store_true", help="print the resolved config as JSON")

    hl = sub.add_parser("health", help="devices, backend, disk and unavailable items (exit 1 when something is down)",
                        epilog=example("kiosk health --json"))
    hl.add_argument("--json", action="store_true", help="print one JSON object")

    st = sub.add_parser("stats", help="transactions per item and outcome, and the satisfaction rate",
                        epilog=example("kiosk stats --from 2026-11-01 --to 2026-11-30",
                                       "kiosk stats --state demo-state | head"))
    st.add_argument("--from", dest="date_from", default=None, metavar="DATE",
                    help="first day, YYYY-MM-DD (default: the first day counted)")
    st.add_argument("--to", dest="date_to", default=None, metavar="DATE",
                    help="last day, YYYY-MM-DD, included (default: the last day counted)")
    st.add_argument("--state", default=None, metavar="DIR",
                    help="read the statistics in DIR (e.g. a `kiosk demo --state DIR`) instead of the "
                         "config's paths.state_dir (default: the config's)")
    st.add_argument("--json", action="store_true", help="print one JSON object")

    rs = sub.add_parser("selftest", help="check this installed release without opening a device (--release)",
                        epilog=example("kiosk selftest --release --json"))
    rs.add_argument("--release", action="store_true",
                    help="config, catalog, translations, a certificate and a receipt render, the UI's first frame")
    rs.add_argument("--json", action="store_true", help="print one JSON object")

    hw = sub.add_parser("hw", help="talk to one device directly (technicians)",
                        epilog=example("kiosk hw readers --json"))
    hws = hw.add_subparsers(dest="hw_device", required=True)  # not "device": idcard has --device
    _add_hw = hws.add_parser
    hws.add_parser = lambda *a, **k: _add_hw(  # type: ignore[method-assign]
        *a, **{"parents": [common], "formatter_class": HelpFormatter, **k})
    idc = hws.add_parser("idcard", help="second-generation ID card reader",
                         epilog=example("kiosk hw idcard read --device serial:/dev/ttyUSB0 --json"))
    idc.add_argument("action", choices=["read"], help="read the card on the reader")
    idc.add_argument("--device", required=True, help="serial:/dev/ttyX or usb:VVVV:PPPP")
    idc.add_argument("--baud", type=int, default=115200, help="serial speed")
    idc.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a card")
    idc.add_argument("--json", action="store_true", help="print one JSON object")
    pp = hws.add_parser("passport", help="ICAO 9303 chip over PC/SC",
                        epilog=example("kiosk hw passport read --document-number E12345678 --birth-date 900101 "
                                       "--expiry-date 300101 --json"))
    pp.add_argument("action", choices=["read"], help="open and read the chip")
    pp.add_argument("--reader", default="", help="substring of the PC/SC reader name (default: the first reader)")
    pp.add_argument("--document-number", required=True, help="the document number on the data page")
    pp.add_argument("--birth-date", required=True, help="YYMMDD")
    pp.add_argument("--expiry-date", required=True, help="YYMMDD")
    pp.add_argument("--json", action="store_true", help="print one JSON object")
    rd = hws.add_parser("readers", help="list PC/SC readers", epilog=example("kiosk hw readers --json"))
    rd.add_argument("--json", action="store_true", help="print a JSON array")
    sc = hws.add_parser("scanner", help="QR code / MRZ scanner in USB serial mode",
                        epilog=example("kiosk hw scanner read --port /dev/ttyACM0 --json"))
    sc.add_argument("action", choices=["read"], help="wait for one code")
    sc.add_argument("--port", required=True, help="e.g. /dev/ttyACM0 or /dev/serial/by-id/...")
    sc.add_argument("--encoding", default="utf-8", help="how the scanner encodes text")
    sc.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for a code")
    sc.add_argument("--json", action="store_true", help="print one JSON object")
    rc = hws.add_parser("receipt", help="ESC/POS receipt printer",
                        epilog=example("kiosk hw receipt print-test --printer network:192.168.1.50:9100"))
    rc.add_argument("action", choices=["print-test", "status"], help="print a test receipt, or read the status")
    rc.add_argument("--printer", required=True,
                    help="network:HOST:PORT | usb:VVVV:PPPP | serial:DEV | cups:QUEUE | file:PATH")
    rc.add_argument("--profile", default="80mm", choices=["80mm", "58mm"], help="paper width")
    rc.add_argument("--json", action="store_true", help="print one JSON object")
    a4 = hws.add_parser("a4", help="A4 printer through CUPS", epilog=example("kiosk hw a4 print-test --queue a4"))
    a4.add_argument("action", choices=["print-test", "status"], help="print a test page, or read the status")
    a4.add_argument("--queue", required=True, help="the CUPS queue name (lpstat -p)")
    a4.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the job to finish")
    a4.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def has_display() -> bool:
    """True when SDL can open a window: an X or Wayland display, or an explicit SDL driver."""
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"))


def cli_run(args: argparse.Namespace) -> int:
    """`kiosk run`: the kiosk UI; without a display (and without --headless), the scripted demo instead."""
    from kiosk.config import load

    cfg = load(getattr(args, "config", None))
    if args.headless or has_display():
        from kiosk.run import run_kiosk

        return run_kiosk(cfg, headless=args.headless, metrics_port=getattr(args, "metrics_port", None))
    from kiosk.demo.command import run_demo
    from kiosk.demo.flows import DEFAULT_FLOW

    out = Path(args.out)
    print("kiosk: no display found; running the scripted demo instead "
          f"(kiosk demo --out {out} --flow {DEFAULT_FLOW})")
    status = run_demo(cfg, out, [DEFAULT_FLOW])
    print(f"kiosk: demo output written to {out.resolve()} (summary.json, screenshots, documents, receipts)")
    return status


def _resolve(spec: str) -> Callable[[argparse.Namespace], int]:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def _reports_its_progress(args: argparse.Namespace) -> bool:
    """True for the demo (`kiosk demo`, or `kiosk run` without a display), which prints a line per flow.

    The display test is the one `kiosk run` makes before it falls back to the demo.
    """
    no_display = not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"))
    return args.command in ("demo", "ui-audit") or (args.command == "run" and not args.headless and no_display)


def quiet_broken_pipe() -> int:
    """The reader of our output went away (`kiosk stats | head`): stop quietly, as `cat` would.

    stdout is pointed at /dev/null so the interpreter's own flush at exit raises nothing either.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kiosk` console script."""
    args = build_parser().parse_args(argv)
    from kiosk.privacy import MASKING_FILTER
    from kiosk.services.logs import setup_console

    setup_console(verbose=args.verbose, quiet=_reports_its_progress(args))
    try:
        if args.command in CONFIG_COMMANDS:
            from kiosk.config import resolve

            source = resolve(getattr(args, "config", None))
            args.config = source.path
            print(f"kiosk: {source.describe()}", file=sys.stderr)
        key = f"hw {args.hw_device}" if args.command == "hw" else args.command
        return int(_resolve(HANDLERS[key])(args) or 0)
    except KioskError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": {**err.to_dict("en"), "detail": MASKING_FILTER.mask(err.detail)}},
                             ensure_ascii=False))
        else:
            print(f"kiosk: {err.code}: {MASKING_FILTER.mask(err.detail or err.message('en'))}", file=sys.stderr)
        return err.exit_status
    except BrokenPipeError:
        return quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the traceback for the log only
        logging.getLogger("kiosk.cli").debug("internal error", exc_info=True)
        detail = MASKING_FILTER.mask(f"{type(exc).__name__}: {exc}")  # stderr ends up in the system journal
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": "internal_error", "message": detail}}, ensure_ascii=False))
        else:
            print(f"kiosk: internal_error: {detail} (run with -v for details)", file=sys.stderr)
        return 70  # EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
