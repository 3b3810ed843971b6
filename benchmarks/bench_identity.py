"""Identity devices: ID card placed → identity parsed, and a passport chip read through pcscd.

ID card: the virtual SAM on a pseudo-terminal, paced like a 115200-baud UART, beside the
wire time of the 1295-byte base-info frame. Passport: pcscd + vpcd + the virtual chip, BAC
then EF.COM, DG1, DG2 and EF.SOD under secure messaging, with the kiosk's time per APDU.

For bench.json: ``card_to_identity_ms`` is the median placed → parsed over the pty paced at 115200 baud
with the driver's default 100 ms poll (the kiosk's reader as configured); ``card_wire_ms`` the wire time
of the card's 1295-byte base-info frame at 115200 baud; ``apdu_overhead_ms`` the median time per APDU
through pcscd + vpcd + the virtual chip (null when pcscd is missing or does not start).
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kiosk.hardware import ga467
from kiosk.hardware.idcard_sam import SamIdCardReader
from kiosk.hardware.simulators.sam_device import PtySam, SamUsbBackend, VirtualSam

BAUD = 115200
FRAME = 1295
KIOSK_POLL_S = 0.1  # SamIdCardReader's default poll_interval: the reader as the kiosk configures it


def _ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:7.1f} ms  "
            f"min {min(values) * 1000:7.1f}  max {max(values) * 1000:7.1f}  (n={len(values)})")


def _idcard_reads(reader: SamIdCardReader, sam: VirtualSam, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        sam.remove()
        reader.wait_for_removal(2)
        sam.place(i % len(sam.cards))
        started = time.perf_counter()  # the card lands on the reader now
        reader.read_card(timeout=5)
        times.append(time.perf_counter() - started)
    return times


def bench_idcard(rounds: int = 15) -> dict[str, Any]:
    """Placement → parsed identity over a paced pty, an unpaced pty and the pyusb backend; the bench.json
    figures ``card_to_identity_ms`` and ``card_wire_ms``."""
    wire_ms = FRAME * 10 / BAUD * 1000
    print(f"  wire time of a {FRAME}-byte frame at {BAUD} baud (10 bits/byte): {wire_ms:.1f} ms")
    figures: dict[str, Any] = {"card_wire_ms": round(wire_ms, 1), "card_to_identity_ms": None}
    cmds = 2 + 1 + 1  # two debounced finds, select, read: 10 bytes each way out
    answers = 15 * 2 + 19 + FRAME  # find answers 15 bytes, select 19, base info 1295
    print(f"  wire time of the whole exchange (2 finds, select, read): "
          f"{(cmds * 10 + answers) * 10 / BAUD * 1000:.1f} ms")
    for label, pace, poll in (("pty paced at 115200, poll 20 ms", BAUD, 0.02),
                              ("pty paced at 115200, poll 100 ms", BAUD, 0.1),
                              ("pty unpaced, poll 20 ms", None, 0.02)):
        with PtySam(VirtualSam(), baud=pace) as sim:
            reader = SamIdCardReader("id_card", {"port": sim.port, "poll_interval": poll})
            times = _idcard_reads(reader, sim.sam, rounds)
            print(f"  placed → parsed, {label:34} {_ms(times)}")
            reader.close()
            if pace == BAUD and poll == KIOSK_POLL_S:
                figures["card_to_identity_ms"] = round(statistics.median(times) * 1000, 1)
    backend = SamUsbBackend(VirtualSam())
    reader = SamIdCardReader("id_card", {"vendor_id": 0x0400, "product_id": 0xC35A, "backend": backend,
                                         "poll_interval": 0.02})
    print(f"  placed → parsed, {'pyusb backend, poll 20 ms':34} {_ms(_idcard_reads(reader, backend.sam, rounds))}")
    reader.close()
    text = ga467.encode_text_block(VirtualSam().card)
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        ga467.parse_text_block(text)
    print(f"  text block parse alone: {(time.perf_counter() - started) / n * 1e6:.1f} µs")
    return figures


def bench_passport(rounds: int = 8) -> dict[str, Any]:
    """BAC + EF.COM + DG1 + DG2 + EF.SOD through a real pcscd with vpcd and the virtual chip; the bench.json
    figure ``apdu_overhead_ms`` (empty when pcscd is missing or does not start)."""
    from kiosk.errors import DeviceOffline
    from kiosk.hardware.pcsc_reader import PcscChipReader, list_readers
    from kiosk.hardware.simulators.vicc import Pcscd, VirtualChip, VpcdChip

    if shutil.which("pcscd") is None:
        print("  passport: pcscd not installed, not measured")
        return {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-pcscd-"))
    daemon = Pcscd(workdir)
    try:
        daemon.start()
    except RuntimeError as exc:
        print(f"  passport: could not start pcscd ({exc}), not measured")
        return {}
    chip = VirtualChip()
    runner = VpcdChip(chip, daemon.port).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if any(r.card_present for r in list_readers()):
                    break
            except DeviceOffline:
                pass
            time.sleep(0.05)
        trust = workdir / "csca.pem"
        trust.write_bytes(chip.pki.csca_pem())
        reader = PcscChipReader("pcsc", {"reader": "Virtual PCD", "trust_store": str(trust)})
        totals, per_apdu, counts = [], [], []
        for _ in range(rounds):
            started = time.perf_counter()
            doc = reader.read_chip("L898902C<", "690806", "940623", timeout=5)
            totals.append(time.perf_counter() - started)
            per_apdu.extend(doc.apdu_seconds)
            counts.append(doc.apdu_count)
        sizes = {n: len(chip.files[f]) for n, f in (("EF.COM", 0x011E), ("DG1", 0x0101), ("DG2", 0x0102),
                                                     ("EF.SOD", 0x011D))}
        print(f"  files: {', '.join(f'{k} {v} B' for k, v in sizes.items())}; "
              f"READ BINARY chunk {reader.chunk} B")
        print(f"  full read (BAC, 4 files, passive auth): {_ms(totals)}")
        print(f"  APDUs per read: {counts[0]}; time per APDU (pcscd + vpcd + chip): "
              f"median {statistics.median(per_apdu) * 1000:.2f} ms, "
              f"p90 {sorted(per_apdu)[int(len(per_apdu) * 0.9)] * 1000:.2f} ms; "
              f"all APDUs of one read {sum(per_apdu) / rounds * 1000:.1f} ms, the rest is waiting for "
              f"the card, connect/reset and passive authentication")
        reader.close()
        return {"apdu_overhead_ms": round(statistics.median(per_apdu) * 1000, 2)}
    finally:
        runner.stop()
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> dict[str, Any]:
    """Print the identity figures; return bench.json's (card_to_identity_ms, card_wire_ms, apdu_overhead_ms)."""
    print("ID card (GA 467 SAM):")
    figures = bench_idcard()
    print("Passport chip (ICAO 9303 over PC/SC):")
    figures.update(bench_passport())
    return figures


if __name__ == "__main__":
    main()
