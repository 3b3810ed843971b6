"""Catalog and item-operation figures: parse time, form validation rate, seeding, and each
kind of item operation's round trip through the simulator over signed loopback HTTP.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import yaml

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.db import Database
from kiosk.backend_sim.server import serve
from kiosk.services.catalog import DEFAULT_PATH, Catalog, parse_catalog

WANG = "37010219850315123X"
LI = "370103196208082347"


def _timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.2f} ms, max {max(samples) * 1000:.2f} ms"


def main() -> None:
    """Print the figures."""
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    print("catalog parse + validate (libyaml):", _ms(_timed(lambda: parse_catalog(yaml.load(text, Loader=loader)), 10)))
    print("catalog parse + validate (pure Python yaml):",
          _ms(_timed(lambda: parse_catalog(yaml.load(text, Loader=yaml.SafeLoader)), 3)))
    t17 = Catalog.load().get("T17")
    form = {"accident_date": time.strftime("%Y-%m-%d"), "place": "历下区解放路与历山路路口", "own_plate": "鲁a12345",
            "other_plate": "鲁B6M338", "liability": "equal", "injuries": "no", "phone": "138 0531 0001"}
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        t17.validate(form)
    print(f"form validation (T17, 7 fields): {n / (time.perf_counter() - t0):.0f} forms/s")
    print("fresh simulator database (core + 5 item modules seeded):",
          _ms(_timed(lambda: Database.open(None).close(), 5)))

    server = serve("127.0.0.1", 0)
    try:
        client = BackendClient(server.url, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(), DEMO_BACKEND_PUBLIC_KEY,
                               connect_timeout=2.0, read_timeout=10.0, retries=0, backoff=0.0)
        calls: dict[str, Callable[[], Any]] = {
            "certificate H01 (document signed and stored)":
                lambda: client.operate("household_certificate", "H01", WANG, {"purpose": "employment"}),
            "query T01 (violations by licence and plates)": lambda: client.operate("traffic_violation_query", "T01",
                                                                                   WANG, {}),
            "report S15 (case opened)": lambda: client.operate("public_request_submission", "S15", LI, {
                "topic": "suggestion", "content": "建议增加夜间照明和座椅。", "phone": "13905310004"}),
            "lookup appointment_slots (G01)": lambda: client.lookup("appointment_slots", "G01", WANG, {}),
        }
        for name, call in calls.items():
            call()  # warm up
            print(f"{name}:", _ms(_timed(call, 30)))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
