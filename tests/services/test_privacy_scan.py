"""Privacy scan: after sessions end, nothing on the kiosk's disk names the resident.

Sessions of several kinds run to their end (completed, paper out then reprinted, paid,
cancelled, timed out) while log lines try to carry the resident's data (beside Chinese text,
in a traceback). Then the session
folders, the journal database and its -wal file, the spool and the logs are searched
for the residents' names, ID numbers and addresses in UTF-8, GB18030 and UCS-2LE.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from kiosk.hardware.simulators.cards import DEMO_CARDS, card_by_number
from kiosk.services.runtime import Runtime
from kiosk.services.session import RESUME_FILE, Session
from kiosk.services.workflow.steps import Outcome, Step

WANG = DEMO_CARDS[0]
SUN = card_by_number("370102198812128906")  # named in WANG's kinship form
ENCODINGS = ("utf-8", "gb18030", "utf-16-le")


PHONE = "13905310000"


def _needles() -> list[tuple[str, bytes]]:
    values = [WANG.name, WANG.id_number, WANG.address, SUN.name, SUN.id_number, PHONE]
    return [(f"{v!r}/{enc}", v.encode(enc)) for v in values for enc in ENCODINGS]


def _scanned_files(state: Path) -> list[Path]:
    files = [p for sub in ("sessions", "spool", "logs") for p in (state / sub).rglob("*") if p.is_file()]
    files += [state / "journal.sqlite3", state / "journal.sqlite3-wal"]
    return files


def _hits(files: list[Path]) -> list[str]:
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [f"{path.name}: {label}" for label, needle in _needles() if needle in data]
    return hits


def test_no_personal_data_remains_after_sessions(sim, tmp_path, flows, monkeypatch):
    state = tmp_path / "state"
    # Every copy of a resume record, held open as it is written: an open handle still reads a
    # replaced file's blocks, so the scan sees what the disk keeps of each rewrite.
    copies = []
    save_resume = Session.save_resume

    def save_and_hold(self, record):
        save_resume(self, record)
        copies.append(open(self.file(RESUME_FILE), "rb"))

    monkeypatch.setattr(Session, "save_resume", save_and_hold)
    rt = Runtime.from_config(flows.config_for(sim.url, state))
    log = logging.getLogger("kiosk.services.test_privacy")
    try:
        # 1. A certificate, completed; a log line tries to carry the resident's data.
        txn = rt.engine.start("H01")
        flows.drive(txn, sim.url, until=Step.PRODUCE)
        log.info("serving %s, %s, %s", WANG.name, WANG.id_number, WANG.address)
        log.info("身份证%s 手机%s", WANG.id_number, PHONE)  # no \b between Chinese text and digits
        try:
            raise LookupError(f"no household for {WANG.name} {WANG.id_number} at {WANG.address}")
        except LookupError:
            log.exception("lookup failed")  # the traceback is formatted after the message was masked
        # While the session is open its folder does hold personal data: the scan can see it.
        assert any(WANG.id_number in h for h in _hits(_scanned_files(state))), "scan would miss a leak"
        txn.produce()
        txn.finish()

        # 2. Kinship certificate naming a relative, printer out of paper, reprinted later.
        rt.devices.a4_printer.inject("paper_out", True)
        kin = rt.engine.start("H02")
        flows.drive(kin, sim.url, values={"relative_name": SUN.name, "relative_id_number": SUN.id_number})
        assert kin.produced.undelivered == ("paper_out",)
        kin.finish()
        rt.devices.a4_printer.clear("paper_out")
        rt.devices.a4_printer.refill()
        again = rt.engine.start("H16")
        assert again.identify(WANG)
        assert again.reprint().undelivered == ()
        again.finish()

        # 3. A paid fine; 4. a cancelled form; 5. a session that timed out at the confirm screen.
        fine = rt.engine.start("T03")
        flows.drive(fine, sim.url)
        fine.finish()
        cancelled = rt.engine.start("H06")
        cancelled.identify(WANG)
        cancelled.cancel()
        cancelled.finish()
        idle = rt.engine.start("H13")
        flows.drive(idle, sim.url, until=Step.CONFIRM)
        idle.cancel("timeout")
        idle.finish()
        assert (txn.outcome, kin.outcome, fine.outcome) == (Outcome.COMPLETED,) * 3
        assert (cancelled.outcome, idle.outcome, idle.reason) == (Outcome.CANCELLED, Outcome.CANCELLED, "timeout")
        for handler in logging.getLogger().handlers:
            handler.flush()

        files = _scanned_files(state)
        assert (state / "journal.sqlite3-wal").stat().st_size > 0  # the WAL is scanned while it holds pages
        log_text = (state / "logs" / "kiosk.log").read_text("utf-8")
        assert "serving" in log_text and "txn=" in log_text  # the logs were written, masked
        assert "身份证3701**********123X" in log_text and "Traceback" in log_text and "LookupError" in log_text
        assert _hits(files) == []
        assert list((state / "sessions").iterdir()) == []
        assert not (state / "spool").exists() or list((state / "spool").iterdir()) == []
        assert len(copies) >= 6  # the paid fine alone rewrote its record several times
        kept = [fh.read() for fh in copies]
        assert [d[:40] for d in kept if d.strip(b"\0")] == []  # every copy of every record overwritten
    finally:
        for fh in copies:
            fh.close()
        rt.stop()


def test_log_file_is_masked_rotated_and_installed_once(tmp_path):
    from kiosk.privacy import MASKING_FILTER
    from kiosk.services.logs import setup_logging, teardown_logging

    path = setup_logging(tmp_path, max_bytes=2000, backups=2)
    assert setup_logging(tmp_path) == path
    root = logging.getLogger()
    mine = [h for h in root.handlers if getattr(h, "baseFilename", "") == str(path)]
    assert len(mine) == 1 and MASKING_FILTER in mine[0].filters
    log = logging.getLogger("kiosk.services.test_logs")
    MASKING_FILTER.register(WANG.name)
    try:
        for _ in range(40):
            log.warning("card %s of %s, phone 13800138000", WANG.id_number, WANG.name)
    finally:
        MASKING_FILTER.forget()
        teardown_logging(tmp_path)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["kiosk.log", "kiosk.log.1", "kiosk.log.2"]
    text = "".join(p.read_text("utf-8") for p in (tmp_path / "logs").iterdir())
    assert "3701**********123X" in text and "138****8000" in text and "level=WARNING" in text
    assert WANG.id_number not in text and WANG.name not in text
    assert not [h for h in root.handlers if getattr(h, "baseFilename", "") == str(path)]


def test_the_simulator_forgets_its_stored_answers_after_the_idempotency_window(tmp_path, make_backend_client):
    from kiosk.backend_sim.server import serve

    db = tmp_path / "sim.sqlite3"
    window = 2.0
    server = serve("127.0.0.1", 0, db_path=str(db), idempotency_window_s=window)
    # The stored answer is compact JSON; the residents table holds the same values in other columns,
    # so the needles are the answer's own "key":"value" pairs.
    needles = [f'"{k}":"{v}"'.encode() for k, v in (("name", WANG.name), ("id_number", WANG.id_number),
                                                      ("address", WANG.address))]

    def stored() -> list[str]:
        data = b"".join(p.read_bytes() for p in tmp_path.glob("sim.sqlite3*"))
        return [n.decode() for n in needles if n in data]

    try:
        client = make_backend_client(server.url)
        assert client.lookup_identity(WANG.id_number, "resident")["resident"]["name"] == WANG.name
        assert stored(), "the scan would miss the stored answer"  # kept within the window, for replays
        with server.app.db.lock:  # as SQLite's own checkpoints do: the answer now sits in the main file too
            server.app.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        time.sleep(window + 1.2)  # stamps are whole seconds
        client.health()  # any later request lets the simulator purge
        assert server.app.db.conn.execute("SELECT count(*) FROM idempotency").fetchone()[0] == 0
        assert stored() == []
    finally:
        server.stop()


def test_after_the_window_an_operation_is_still_known_as_performed_but_holds_no_personal_data(
        tmp_path, make_backend_client):
    import json
    import uuid

    import pytest

    from kiosk.services.backend import BackendRejected
    from kiosk.backend_sim.server import serve

    db = tmp_path / "sim.sqlite3"
    window = 2.0
    server = serve("127.0.0.1", 0, db_path=str(db), idempotency_window_s=window)
    try:
        client = make_backend_client(server.url)
        key = f"h01-{uuid.uuid4().hex}"
        done = client.operate("household_certificate", "H01", WANG.id_number, {"purpose": "school"},
                              idempotency_key=key)
        assert WANG.name in json.dumps(done, ensure_ascii=False)  # the stored answer (its document) names her
        time.sleep(window + 1.2)
        client.health()  # lets the simulator purge
        with server.app.db.lock:
            server.app.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = b"".join(p.read_bytes() for p in tmp_path.glob("sim.sqlite3*"))
        stored = server.app.db.conn.execute("SELECT body FROM idempotency WHERE key = ?", (key,)).fetchone()[0]
        assert WANG.name.encode() not in bytes(stored) and WANG.id_number.encode() not in bytes(stored)
        assert f'"name":"{WANG.name}"'.encode() not in data
        # A kiosk settling the key after a long outage still learns it was delivered (so it never refunds it) ...
        outcome = client.outcome(key)
        assert outcome["outcome"] == "performed" and outcome["result"]["reference"] == done["reference"]
        assert outcome["result"]["display"] == [] and outcome["result"]["document"] is None
        # ... and the same request sent again is refused, never performed a second time.
        with pytest.raises(BackendRejected) as err:
            client.operate("household_certificate", "H01", WANG.id_number, {"purpose": "school"}, idempotency_key=key)
        assert err.value.context["remote_code"] == "answer_expired"
    finally:
        server.stop()
