"""Fleet figures: enrollment (key, CSR, call, checks), heartbeat round trips over HTTP and mutual TLS,
flushing a queue built up during an outage, heartbeat size, and rendering the fleet page for many terminals."""
from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.hardware.base import DeviceState, SupplyState, status
from kiosk.services.backend import BackendClient, enroll
from kiosk.backend_sim.db import CST
from kiosk.backend_sim.fleet_page import render_fleet_page
from kiosk.backend_sim.server import serve
from kiosk.services.heartbeat import HeartbeatSender
from provisioning.enroll import check_answer, new_key_and_csr
from benchmarks.timing import ms, timed

DEVICES = {name: status(DeviceState.ONLINE, {"paper": SupplyState.OK} if "printer" in name else {})
           for name in ("id_card", "pcsc", "receipt_printer", "a4_printer", "scanner", "camera")}




def main() -> None:
    """Print the figures."""
    logging.disable(logging.WARNING)  # the outage below logs one warning per beat: not a figure
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sim = serve("127.0.0.1", 0, tls=True)
        try:
            ca = tmp / "ca.pem"
            ca.write_bytes(sim.ca_pem)
            counter = iter(range(10_000))
            last: dict[str, Any] = {}

            def one_enrollment() -> None:
                tid = f"JN-B-{next(counter):04d}"
                code = requests.post(f"{sim.enroll_url}/api/v1/sim/enrollment-codes", json={"terminal_id": tid},
                                     verify=str(ca), timeout=10).json()["code"]
                t = time.perf_counter()
                key, csr = new_key_and_csr(tid)
                answer = enroll(sim.enroll_url, tid, code, csr, ca_file=str(ca))
                check_answer(answer, key, tid)
                last.update(tid=tid, key=key, answer=answer, took=time.perf_counter() - t)

            took = []
            for _ in range(10):
                one_enrollment()
                took.append(last["took"])
            print(f"enrollment (EC P-256 key + CSR + signed call + CA-issued cert check): {ms(took)}")

            cert, key_file = tmp / "t.crt", tmp / "t.key"
            cert.write_text(last["answer"]["certificate_pem"])
            key_file.write_bytes(last["key"].private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
            mtls = BackendClient(sim.url, last["tid"], last["answer"]["hmac_secret"].encode(), DEMO_BACKEND_PUBLIC_KEY,
                                 ca_file=str(ca), client_cert=(str(cert), str(key_file)))
            sender = HeartbeatSender(mtls, tmp / "mtls", last["tid"], DEMO_BACKEND_PUBLIC_KEY, lambda: DEVICES)
            print(f"heartbeat over mutual TLS (one beat; the simulator speaks HTTP/1.0, so a handshake each): {ms(timed(sender.beat, 30))}")
            body = sender.snapshot(1)
            print(f"heartbeat body: {len(json.dumps(body, separators=(',', ':')))} bytes for {len(DEVICES)} devices")
        finally:
            sim.stop()

        sim = serve("127.0.0.1", 0)
        try:
            plain = BackendClient(sim.url, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(), DEMO_BACKEND_PUBLIC_KEY)
            sender = HeartbeatSender(plain, tmp / "plain", DEMO_TERMINAL_ID, DEMO_BACKEND_PUBLIC_KEY, lambda: DEVICES)
            print(f"heartbeat over plain HTTP: {ms(timed(sender.beat, 30))}")
            down = BackendClient("http://127.0.0.1:9", DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(),
                                 DEMO_BACKEND_PUBLIC_KEY, retries=0)
            sender.backend = down
            for _ in range(200):
                sender.beat()
            sender.backend = plain
            t = time.perf_counter()
            result = sender.beat()
            flush = time.perf_counter() - t
            print(f"flushing {result.sent} queued heartbeats after an outage: {flush:.2f} s "
                  f"({result.sent / flush:.0f}/s)")
        finally:
            sim.stop()

    now = datetime.now(CST)
    rows = [{"terminal_id": f"JN-{i:04d}", "status": "active", "last_heartbeat_at": now.isoformat(),
             "last_heartbeat": {"devices": {k: v.to_dict() for k, v in DEVICES.items()}}} for i in range(500)]
    times = timed(lambda: render_fleet_page(rows, now, "zh_CN"), 5)
    print(f"fleet page for 500 terminals: {ms(times)}, {len(render_fleet_page(rows, now)) // 1024} KiB")
    fleet_page_in_chromium()


def fleet_page_in_chromium(count: int = 200) -> None:
    """200 terminals' real heartbeats, the page served and drawn by headless Chromium; a screenshot in out/."""
    import shutil
    import subprocess

    from kiosk.backend_sim.fleet_demo import plan, send_heartbeats

    chromium = shutil.which("chromium")
    if chromium is None:
        print("fleet page in Chromium: skipped, chromium not installed (make deps-test)")
        return
    fleet = plan(count)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sim = serve("127.0.0.1", 0, terminals=dict(fleet.secrets))
        try:
            t = time.perf_counter()
            send_heartbeats(sim.url, fleet, tmp / "terminals")
            print(f"{count} terminals' first heartbeats (signed, over HTTP): {time.perf_counter() - t:.1f} s")
            url = f"{sim.url}/fleet"
            served = timed(lambda: requests.get(url, timeout=30), 5)
            size = len(requests.get(url, timeout=30).content) // 1024
            print(f"GET /fleet with {count} terminals (server side): {ms(served)}, {size} KiB")

            def chromium_run(target: str, *extra: str) -> None:
                subprocess.run([chromium, *flags, f"--user-data-dir={tmp / 'profile'}", *extra, target],
                               capture_output=True, timeout=120, check=True)

            blank = timed(lambda: chromium_run("data:text/html,<p>x</p>", "--dump-dom"), 3)
            page = timed(lambda: chromium_run(url, "--dump-dom"), 3)
            import statistics

            extra_ms = (statistics.median(page) - statistics.median(blank)) * 1000
            print(f"headless Chromium, load and render /fleet ({count} terminals): {ms(page)}; an empty page "
                  f"{ms(blank)}; the fleet page's own share about {extra_ms:.0f} ms")
            shot = Path("out") / f"fleet-{count}.png"
            shot.parent.mkdir(exist_ok=True)
            chromium_run(url, f"--screenshot={shot.resolve()}", "--window-size=1800,2000", "--hide-scrollbars")
            print(f"screenshot of the fleet page with {count} terminals: {shot.resolve()}")
        finally:
            sim.stop()


if __name__ == "__main__":
    main()
