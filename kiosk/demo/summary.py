"""What a demo run writes under --out: summary.json (flows, recovery) and the documents and receipts printed."""
from __future__ import annotations

import json
import math
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def unused(path: Path) -> Path:
    """``path`` (ITEM-REST), or ITEM.runK-REST when an earlier flow of the same item took it."""
    item, _, rest = path.name.partition("-")
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{item}.run{k}-{rest}")
        k += 1
    return candidate



def response_figures(times_ms: list[float]) -> dict[str, float | None]:
    """``touch_ms``: {p50, p95, max} of response times in ms (nearest rank), each null when none was timed."""
    if not times_ms:
        return {"p50": None, "p95": None, "max": None}
    ranked = sorted(times_ms)

    def rank(fraction: float) -> float:
        return round(ranked[max(0, math.ceil(fraction * len(ranked)) - 1)], 1)
    return {"p50": rank(0.50), "p95": rank(0.95), "max": round(ranked[-1], 1)}

@dataclass(frozen=True)
class FaultCount:
    """How often a simulator applied one fault during a flow (summary.json ``faults``)."""

    kind: str
    count: int


@dataclass
class FlowRecord:
    """One flow's line in summary.json: a field per key, in the order written."""

    item: str
    person: str = ""
    mode: str = "normal"  # the screen's mode the flow ran in: "normal" or "care" (关怀模式)
    outcome: str = "failed"
    reason: str = ""
    message: str = ""  # the refusal or error as the resident read it (English)
    where: str = ""  # where the refusal sends the resident (English)
    input: str = "touch"  # how the resident worked the kiosk: "touch" or "keypad" (the tactile keypad only)
    keys: int = 0  # keypad keys pressed
    touches: int = 0
    touches_after_identity: int = 0
    touches_by_screen: dict[str, int] = field(default_factory=dict)  # where they were made (none: no entry)
    # touch (finger lifted) or key → the first frame drawn after the UI handled it, ms (null: none was timed)
    touch_ms: dict[str, float | None] = field(default_factory=lambda: response_figures([]))
    seconds: float = 0.0  # machine time: wall time less the resident's pauses and screenshots
    wall_seconds: float = 0.0
    pause_seconds: float = 0.0  # the resident's own pauses (finger down, looking for the reader, paying)
    device_delay_seconds: float = 0.0  # simulated device delays (delay_s options), also left out of seconds
    shown: list[str] = field(default_factory=list)  # every text the flow's last screen showed
    reference: str = ""  # the backend's tracking number / reference of what was done
    verification_codes: list[str] = field(default_factory=list)
    display: list[list[str]] = field(default_factory=list)  # result lines [label_en, value] shown on the done screen
    documents: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)  # the utterances asked for, in order, as text
    audio: list[str] = field(default_factory=list)  # their WAVs as the speaker got them, under audio/
    # each scripted fault, and any other that fired, as often as a simulator applied it
    faults: list[FaultCount] = field(default_factory=list)
    help_ticket: str = ""  # the ticket of the resident's call to the duty officer ("" when no help was asked)
    help_reply: str = ""  # the officer's reply as the resident read it on the screen


@dataclass(frozen=True)
class RecoveredEntry:
    """What start-up recovery finished for one transaction (summary.json ``recovered``)."""

    transaction: str
    item: str
    reference: str
    actions: list[str]
    printed: list[str]  # "receipt" files saved under out/receipts, or what else it printed
    refunded: str  # the order refunded, or ""


@dataclass
class Summary:
    """summary.json: every flow run so far and what start-up recovery finished before them."""

    flows: list[FlowRecord] = field(default_factory=list)
    recovered: list[RecoveredEntry] = field(default_factory=list)

    def write(self, out: Path) -> None:
        """Write ``out``/summary.json (after every flow, so a long run leaves its results so far)."""
        text = json.dumps(asdict(self), ensure_ascii=False, indent=2)
        (out / "summary.json").write_text(text, encoding="utf-8")


class Printouts:
    """What the simulated printers print from now on, to be copied under the demo's output folder."""

    def __init__(self, runtime: Any, out: Path) -> None:
        self.out = out
        self.a4 = runtime.devices.get("a4_printer")
        self.receipt = runtime.devices.get("receipt_printer")
        self.a4_from = len(self.a4.jobs) if self.a4 is not None else 0
        self.receipt_from = len(self.receipt.jobs) if self.receipt is not None else 0

    def save(self, item_id: str) -> tuple[list[str], list[str]]:
        """Copy the new A4 documents (PDF) and receipts (ESC/POS bytes); their paths under ``out``."""
        documents: list[str] = []
        receipts: list[str] = []
        if self.a4 is not None:
            for n, job in enumerate(self.a4.jobs[self.a4_from:]):
                target = unused(self.out / "documents" / f"{item_id}-{n + 1}.pdf")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(job.path, target)
                documents.append(str(target.relative_to(self.out)))
        if self.receipt is not None:
            for n, data in enumerate(self.receipt.jobs[self.receipt_from:]):
                target = unused(self.out / "receipts" / f"{item_id}-{n + 1}.bin")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                receipts.append(str(target.relative_to(self.out)))
        return documents, receipts


class SpokenLog:
    """What the kiosk says from now on: the utterances in order, and their WAVs, to be copied under ``audio/``."""

    def __init__(self, runtime: Any, out: Path) -> None:
        self.out = out
        self.speech = getattr(runtime, "speech", None)
        self._heard: list[Any] = []
        self._lock = threading.Lock()
        if self.speech is not None:
            self.speech.listeners.append(self._hear)

    def _hear(self, entry: Any) -> None:
        """SpeechService listener (its thread): one utterance has ended, in the order they were asked for."""
        with self._lock:
            self._heard.append(entry)

    def save(self, item_id: str, timeout_s: float = 60.0) -> tuple[list[str], list[str]]:
        """Wait for what is still being said, stop listening; (texts, WAV paths under ``out``)."""
        if self.speech is None:
            return [], []
        # The resident has gone: a simulated card need not take the time to sound what is left (each utterance is
        # still played whole, its WAV written). A real card is listened to.
        skip = getattr(self.speech.speaker, "skip_ahead", None)
        if skip is not None:
            skip(True)
        try:
            self.speech.wait_idle(timeout_s)
        finally:
            if skip is not None:
                skip(False)
        self.speech.listeners.remove(self._hear)
        with self._lock:
            heard = list(self._heard)
        audio: list[str] = []
        for n, entry in enumerate(heard):
            if entry.audio and Path(entry.audio).is_file():
                target = unused(self.out / "audio" / f"{item_id}-{n + 1:02d}.wav")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(entry.audio, target)
                audio.append(str(target.relative_to(self.out)))
        return [entry.text for entry in heard], audio


def recovered_entries(runtime: Any, out: Path) -> list[RecoveredEntry]:
    """What start-up recovery finished, with the receipts it printed saved under ``out``."""
    printer = runtime.devices.get("receipt_printer")
    jobs = list(getattr(printer, "jobs", ()))  # nothing else has printed yet: these are recovery's
    entries: list[RecoveredEntry] = []
    for action in runtime.recovered:
        printed = []
        for kind in action.printed:
            if kind == "receipt" and jobs:
                target = unused(out / "receipts" / f"{action.item_id}-recovered.bin")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(jobs.pop(0))
                printed.append(str(target.relative_to(out)))
            else:
                printed.append(kind)
        entries.append(RecoveredEntry(action.txn_id, action.item_id, action.reference, list(action.actions),
                                      printed, action.refunded))
    if entries:
        print(f"kiosk demo: start-up recovery settled {len(entries)} transaction(s): "
              + "; ".join(f"{e.item} {','.join(e.actions)}" for e in entries), flush=True)
    return entries  # written to summary.json with the first flow (its appearing means a flow is done)

