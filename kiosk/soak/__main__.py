"""`python -m kiosk.soak ui|engine [--sessions N] [--seed S] [--out DIR]`: one soak, its table, its JSON, its verdict.

``ui`` writes ``DIR/soak.json`` (default 1,000 sessions), ``engine`` writes ``DIR/engine-soak.json``
(default 10,000 sessions); each exits 1 when a target is missed (kiosk.soak.report), 0 otherwise.
``make soak`` runs both, each in its own process so each samples only its own memory, descriptors
and threads. Either soak runs on the allocator kiosk.service gives the kiosk (``PYTHONMALLOC``,
kiosk.services.heap): started without it, the soak starts itself again under it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

DEFAULT_SESSIONS = {"ui": 1000, "engine": 10000}
OUTPUT = {"ui": "soak.json", "engine": "engine-soak.json"}
DEFAULT_SEED = 18
# Sessions between readings: a UI reading scatters by about ±10 MiB with what is alive at that moment, independently
# from one reading to the next, so the slope's error falls with the square root of their number (±4.5 MiB per 1,000
# from one every 10 sessions, about ±2 from one every 2). An engine session is cheap and its readings steady.
DEFAULT_READ_EVERY = {"ui": 2, "engine": 10}


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m kiosk.soak", description=__doc__.splitlines()[0])
    p.add_argument("soak", choices=("ui", "engine"), help="the UI soak (Kivy offscreen) or the engine-only soak")
    p.add_argument("--sessions", type=int, default=None, help="sessions to run (ui 1000, engine 10000)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the plan's seed (written to the JSON)")
    p.add_argument("--out", default="soak-out", help="output folder (default soak-out)")
    p.add_argument("--sample-every", type=int, default=100, help="sessions between samples (default 100)")
    p.add_argument("--read-every", type=int, default=None,
                   help="sessions between the RSS readings the growth is fitted on (ui 2, engine 10)")
    p.add_argument("--trace", action="store_true",
                   help="UI soak: trace Python's allocations and say at each sample which lines grew since the warm-up")
    p.add_argument("--warmup", type=int, default=100,
                   help="sessions before the RSS growth is fitted and descriptors and threads must stay flat")
    return p.parse_args(argv)


def _stop(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def on_production_allocator() -> None:
    """Start this soak again under the kiosk's production allocator when it was started without one (returns only
    when ``PYTHONMALLOC`` is already set: a soak run under another on purpose keeps it, and says so in its JSON)."""
    from kiosk.services.heap import PYTHON_ALLOCATOR

    if os.environ.get("PYTHONMALLOC"):
        return
    os.environ["PYTHONMALLOC"] = PYTHON_ALLOCATOR
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "kiosk.soak", *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    """Run one soak; 0 when every target is met, 1 when one is missed."""
    args = parse(argv)
    sessions = args.sessions if args.sessions is not None else DEFAULT_SESSIONS[args.soak]
    read_every = args.read_every if args.read_every is not None else DEFAULT_READ_EVERY[args.soak]
    if read_every < 1:
        print("kiosk soak: --read-every must be at least 1", file=sys.stderr)
        return 2
    if sessions < 1:
        print("kiosk soak: --sessions must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()  # pcscd reads its reader.conf.d by a path that must not depend on the folder
    out.mkdir(parents=True, exist_ok=True)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(stderr)
    warnings: dict[str, int] = {}
    # Our own handlers before SDL starts: SDL would turn SIGTERM and SIGINT into a window close, which the kiosk
    # refuses, and a stopped soak would run on. Unwinding stops its pcscd and closes the kiosk's stores.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    if args.soak == "ui":
        from kiosk.soak import ui_soak
        from kiosk.soak.plan import FAULT_KINDS as kinds

        result, warnings = ui_soak.run(out, sessions, args.seed, sample_every=args.sample_every, warmup=args.warmup,
                                       read_every=read_every, trace=args.trace)
    else:
        from kiosk.soak import engine_soak
        from kiosk.soak.plan import ENGINE_FAULT_KINDS as kinds

        result = engine_soak.run(out, sessions, args.seed, sample_every=args.sample_every, warmup=args.warmup,
                                 read_every=read_every)
    path = out / OUTPUT[args.soak]
    result.write(path, seed=args.seed)
    print(result.table(f"{args.soak} soak (seed {args.seed})"))
    if warnings:
        print("idle warnings answered by residents, by screen: " + json.dumps(warnings, sort_keys=True))
    missed = result.missed(kinds)
    for line in missed:
        print(f"kiosk soak: target missed: {line}")
    print(f"kiosk soak: {path} written; {'FAILED' if missed else 'every target met'}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    on_production_allocator()
    sys.exit(main())
