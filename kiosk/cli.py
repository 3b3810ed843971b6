"""The `kiosk` command. Each subcommand's work lives in the module that owns it.

Errors become a clear line on stderr (or a JSON object with --json) and the error's exit
status, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Callable, Sequence

from kiosk.errors import KioskError

# subcommand -> "module:function"; imported only when that subcommand runs, so
# `kiosk catalog` does not pay for Kivy.
HANDLERS: dict[str, str] = {
    "run": "kiosk.app:cli_run",
    "demo": "kiosk.demo:cli_demo",
    "catalog": "kiosk.services.catalog:cli_catalog",
    "backend-sim": "kiosk.services.backend_sim.server:cli_backend_sim",
    "config": "kiosk.config_cli:cli_config",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="kiosk", description="24-hour self-service police kiosk")
    p.add_argument("--config", help="TOML config file (default: $KIOSK_CONFIG, else the demo profile)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (personal data stays masked)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the kiosk (demo profile by default)")
    run.add_argument("--headless", action="store_true", help="run offscreen without a window")
    run.add_argument("--metrics-port", type=int, default=None, help="Prometheus metrics port")
    run.add_argument("--out", default="demo-out", help="where the demo writes when there is no display")

    demo = sub.add_parser("demo", help="drive the real UI headless through scripted residents")
    demo.add_argument("--out", required=True, help="output folder for summary.json, screenshots, documents")
    demo.add_argument("--flow", nargs="+", default=[], metavar="ITEM_ID", help="items to run (default H01)")
    demo.add_argument("--all", action="store_true", help="run all items of the catalog")

    cat = sub.add_parser("catalog", help="list the self-service items")
    cat.add_argument("--json", action="store_true", help="print a JSON array")

    sim = sub.add_parser("backend-sim", help="run the backend simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8740)
    sim.add_argument("--db", default=None, help="SQLite file (default: a fresh temporary one)")

    cfg = sub.add_parser("config", help="check a config file and print it resolved")
    cfg.add_argument("--json", action="store_true")
    return p


def _resolve(spec: str) -> Callable[[argparse.Namespace], int]:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kiosk` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from kiosk.privacy import MASKING_FILTER

    for handler in logging.getLogger().handlers:
        handler.addFilter(MASKING_FILTER)
    try:
        return int(_resolve(HANDLERS[args.command])(args) or 0)
    except KioskError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": err.to_dict("en")}, ensure_ascii=False))
        else:
            print(f"kiosk: {err.code}: {err.detail or err.message('en')}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
