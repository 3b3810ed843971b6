"""The side-effect journal: states, refs allow-list, salted hashes, atomic files, WAL."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from kiosk.services import journal as J


def test_begin_complete_fail_round_trip(tmp_path):
    j = J.Journal(tmp_path)
    j.begin("k1", "t1", "H01", "produce", J.OPERATE, id_hash="h", refs={"operation": "household_certificate"})
    j.begin("k2", "t1", "H01", "produce", J.PRINT_A4, id_hash="h")
    assert [e.key for e in j.pending()] == ["k1", "k2"]
    j.complete("k1", {"document_id": "D1", "verification_code": "ABCD"})
    j.fail("k2", "paper_out")
    e1, e2 = j.entries("t1")
    assert (e1.state, e1.refs["operation"], e1.refs["document_id"]) == (J.DONE, "household_certificate", "D1")
    assert (e2.state, e2.code) == (J.FAILED, "paper_out")
    assert j.pending() == []
    assert [e.key for e in j.undelivered("h")] == ["k2"]
    j.resolve("k2", "reprinted")
    assert j.undelivered("h") == []
    assert j.get("k2").refs["resolution"] == "reprinted"


def test_begin_twice_keeps_the_first_and_entries_survive_reopen(tmp_path):
    j = J.Journal(tmp_path)
    j.begin("k", "t", "T03", "pay", J.PAY_CREATE, refs={"amount_fen": 20000})
    j.begin("k", "t", "T03", "pay", J.PAY_CREATE, refs={"amount_fen": 1})
    j.close()
    again = J.Journal(tmp_path)
    [entry] = again.entries()
    assert entry.refs["amount_fen"] == 20000 and entry.state == J.BEGUN


def test_refs_outside_the_allow_list_are_refused(tmp_path):
    j = J.Journal(tmp_path)
    with pytest.raises(ValueError):
        j.begin("k", "t", "H01", "produce", J.OPERATE, refs={"name": "王小明"})
    j.begin("k", "t", "H01", "produce", J.OPERATE)
    with pytest.raises(ValueError):
        j.complete("k", {"id_number": "37010219850315123X"})
    with pytest.raises(ValueError):
        j.complete("k", {"reference": {"nested": "content"}})
    with pytest.raises(ValueError):
        j.begin("k9", "t", "H01", "produce", "launch_rocket")


def test_id_hash_is_salted_per_terminal_and_stable(tmp_path):
    a = J.Journal(tmp_path / "a")
    b = J.Journal(tmp_path / "b")
    number = "37010219850315123X"
    assert a.id_hash(number) == a.id_hash(number.lower()) == J.Journal(tmp_path / "a").id_hash(number)
    assert a.id_hash(number) != b.id_hash(number)
    assert number not in a.id_hash(number) and len(a.id_hash(number)) == 64
    assert a.id_hash("") == ""
    assert (tmp_path / "a" / J.SALT_FILE).stat().st_mode & 0o077 == 0


def test_database_is_wal_and_journal_records_are_crash_safe(tmp_path):
    j = J.Journal(tmp_path)
    j.begin("k", "t", "H01", "produce", J.OPERATE)
    mode = sqlite3.connect(tmp_path / J.DB_FILE).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    # Another connection (a fresh process after a crash) sees the committed row at once.
    row = sqlite3.connect(tmp_path / J.DB_FILE).execute("SELECT state FROM effects WHERE key='k'").fetchone()
    assert row == (J.BEGUN,)


def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "state.json"
    J.atomic_write(target, b"one")
    J.atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_concurrent_writers_do_not_lose_entries(tmp_path):
    j = J.Journal(tmp_path)

    def work(n: int) -> None:
        for i in range(20):
            key = f"{n}-{i}"
            j.begin(key, f"t{n}", "H01", "produce", J.PRINT_RECEIPT)
            j.complete(key)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = j.entries()
    assert len(entries) == 80 and all(e.state == J.DONE for e in entries)
    assert len({e.key for e in entries}) == 80


def test_missing_key_update_is_a_journal_error(tmp_path):
    j = J.Journal(tmp_path)
    with pytest.raises(J.JournalError):
        j.complete("nope")


def test_purge_drops_old_settled_transactions_only(tmp_path):
    j = J.Journal(tmp_path)
    for txn, state in (("old-done", J.DONE), ("old-open", J.BEGUN), ("new-done", J.DONE)):
        j.begin(f"{txn}-1", txn, "H01", "produce", J.OPERATE, id_hash="h")
        if state == J.DONE:
            j.complete(f"{txn}-1")
    j.begin("old-done-2", "old-done", "H01", "produce", J.PRINT_A4, id_hash="h")
    j.fail("old-done-2", "paper_out")
    old = 40 * 24 * 3600
    db = sqlite3.connect(tmp_path / J.DB_FILE)
    db.execute("UPDATE effects SET updated_at = updated_at - ? WHERE txn_id LIKE 'old-%'", (old,))
    db.commit()
    assert j.purge() == 2
    assert sorted(e.key for e in j.entries()) == ["new-done-1", "old-open-1"]
    assert j.undelivered("h") == []
