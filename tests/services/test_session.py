"""Sessions: personal data in one object and one folder, wiped when the session ends."""
from __future__ import annotations

import gc
import logging
import re

from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.privacy import MASKING_FILTER
from kiosk.services.session import RESUME_FILE, EndReason, Session, load_resume, shred, wipe_leftovers

CARD = DEMO_CARDS[0]


def test_end_wipes_folder_spool_and_fields(tmp_path):
    s = Session(tmp_path)
    s.set_identity(CARD)
    s.fields = {"purpose": "入学"}
    s.documents = [{"content": {"name": CARD.name}}]
    s.file("document-0.pdf").write_bytes(CARD.name.encode())
    s.save_resume({"id_number": CARD.id_number})
    spooled = s.spool_file("a4-0.pdf")
    spooled.write_bytes(b"x")
    other = tmp_path / "spool" / "someone-else.pdf"
    other.write_bytes(b"y")
    assert load_resume(tmp_path, s.id) == {"id_number": CARD.id_number}
    s.end(EndReason.DONE)
    assert not s.folder.exists()
    assert not spooled.exists() and other.exists()  # only this session's spool files
    assert s.identity is None and s.fields == {} and s.documents == [] and s.id_number == ""
    assert s.ended is EndReason.DONE
    s.end("cancel")  # twice is harmless and keeps the first reason
    assert s.ended is EndReason.DONE


def test_session_folders_are_private_and_unique(tmp_path):
    a, b = Session(tmp_path), Session(tmp_path)
    assert a.folder != b.folder and a.folder.parent == tmp_path / "sessions"
    assert a.folder.stat().st_mode & 0o077 == 0


def test_log_filter_masks_the_session_name_until_end(tmp_path, caplog):
    s = Session(tmp_path)
    s.set_identity(CARD)
    logger = logging.getLogger("kiosk.test.session")
    handler = logging.StreamHandler()
    handler.addFilter(MASKING_FILTER)
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="kiosk.test.session"):
            logger.info("serving %s at %s", CARD.name, CARD.address)
        assert CARD.name not in caplog.records[-1].getMessage()
        assert CARD.address not in caplog.records[-1].getMessage()
        s.end("timeout")
        assert MASKING_FILTER._names == set()
    finally:
        logger.removeHandler(handler)


def test_shred_overwrites_before_unlinking(tmp_path):
    f = tmp_path / "secret.bin"
    f.write_bytes(b"A" * 100_000)
    with open(f, "rb") as keep:  # an open handle sees the overwritten bytes after unlink
        shred(f)
        assert not f.exists()
        assert keep.read() == b"\0" * 100_000


def test_every_rewritten_copy_of_the_resume_record_is_overwritten(tmp_path):
    s = Session(tmp_path)
    copies = []
    for step in ("confirm", "pay", "produce"):  # a paid item rewrites its record three times
        s.save_resume({"id_number": CARD.id_number, "address": CARD.address, "step": step})
        copies.append(open(s.file(RESUME_FILE), "rb"))  # this copy's blocks, whatever its name becomes
    assert load_resume(tmp_path, s.id)["step"] == "produce"  # the record itself is whole
    assert CARD.id_number.encode() in copies[-1].read()
    copies[-1].seek(0)
    s.end("done")
    try:
        for fh in copies:
            data = fh.read()
            assert data and data == b"\0" * len(data)
    finally:
        for fh in copies:
            fh.close()


def test_wipe_leftovers_removes_crashed_sessions(tmp_path):
    s = Session(tmp_path)
    s.save_resume({"id_number": CARD.id_number})
    s.spool_file("receipt.bin").write_bytes(b"z")
    assert wipe_leftovers(tmp_path) == 2
    assert list((tmp_path / "sessions").iterdir()) == []
    assert list((tmp_path / "spool").iterdir()) == []


def test_ending_sessions_compiles_no_pattern_per_session(tmp_path):
    # A thousand residents a day: nothing a session ends with may be kept per session (a glob of the session's
    # own id was compiled and cached as a new regular expression every time).
    def patterns() -> int:
        return sum(1 for o in gc.get_objects() if type(o) is re.Pattern)

    for _ in range(3):
        Session(tmp_path).end(EndReason.DONE)
    before = patterns()
    for _ in range(30):
        s = Session(tmp_path)
        s.spool_file("a4-0.pdf").write_bytes(b"x")
        s.end(EndReason.DONE)
    assert patterns() - before < 5
    assert list((tmp_path / "spool").iterdir()) == []
