"""Power cuts: each store loses at most its last unsynced write, opens again, and nothing paid is lost.

A cut is simulated on a copy of the state folder taken at the moment the power goes: for a
SQLite store (WAL, ``synchronous=FULL``) the WAL is truncated inside the frames of the last
write, as a disk that had not yet taken them would leave it; for a file store the write is
stopped inside ``write_atomic`` with half its bytes in the temporary file, as a cut before
the fsync leaves it. Start-up then runs on that copy: the store must open, hold the old or
the new state (never a mix), and the journal's paid charge must reach recovery, which
delivers the service or refunds it.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from kiosk import durable
from kiosk.services import journal as J
from kiosk.services import maintenance, session, update_status
from kiosk.services.maintenance import MaintenanceAccess, WrongPin
from kiosk.services.runtime import Runtime
from kiosk.services.stats import Stats
from kiosk.services.workflow.steps import Step
from provisioning import init_config

PAID_ITEM = "H13"  # ID card replacement: a fixed fee, paid through the simulator


class PowerCut(BaseException):
    """The power went: nothing after this point ran (BaseException, so no handler tidies up)."""


def _cut_copy(state: Path, dest: Path) -> Path:
    """What the disk holds when the power goes: the state folder as it is (shared memory indexes are not kept)."""
    shutil.copytree(state, dest, ignore=shutil.ignore_patterns("*-shm"))
    return dest


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


def _integrity(db_path: Path) -> str:
    db = sqlite3.connect(db_path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


# --- the journal: a paid charge survives a cut during the next write --------------------
def _paid_then_cut(flows: Any, sim: Any, tmp_path: Path) -> tuple[Path, int, int, str]:
    """Pay for H13, then cut the power while the operation's journal entry is being written.

    Returns the copied state folder, the WAL size when the payment was on disk, the WAL
    size with the cut write in it, and the transaction id.
    """
    state = tmp_path / "live" / "state"
    rt = Runtime.from_config(flows.config_for(sim.url, state))
    wal = state / (J.DB_FILE + "-wal")
    marks: dict[str, Any] = {}
    begin = rt.journal.begin

    def begin_then_cut(key: str, txn_id: str, item_id: str, step: str, kind: str, **kw: Any) -> None:
        if kind != J.OPERATE:
            return begin(key, txn_id, item_id, step, kind, **kw)
        marks["before"] = wal.stat().st_size
        begin(key, txn_id, item_id, step, kind, **kw)
        marks["after"] = wal.stat().st_size
        marks["copy"] = _cut_copy(state, tmp_path / "disk" / "state")
        raise PowerCut

    rt.journal.begin = begin_then_cut  # type: ignore[method-assign]
    try:
        txn = rt.engine.start(PAID_ITEM)
        flows.drive(txn, sim.url, until=Step.PRODUCE)
        with pytest.raises(PowerCut):
            txn.produce()
    finally:
        rt.engine.active = lambda: []  # type: ignore[method-assign]  # a dead kiosk cancels nothing
        rt.stop()
    return marks["copy"], marks["before"], marks["after"], txn.id


@pytest.mark.parametrize("cut", ["mid_write", "after_write"])
def test_a_paid_charge_survives_a_cut_and_recovery_delivers_it(flows, fresh_sim, tmp_path, cut):
    disk, before, after, txn_id = _paid_then_cut(flows, fresh_sim, tmp_path)
    wal = disk / (J.DB_FILE + "-wal")
    assert after > before  # the cut write reached the WAL file (the cut below really drops something)
    if cut == "mid_write":
        _truncate(wal, before + (after - before) // 2)
    on_disk = J.Journal(disk)  # what the disk holds after the cut, before recovery touches it
    kept = {(e.kind, e.state) for e in on_disk.entries() if e.txn_id == txn_id}
    on_disk.close()
    assert (J.PAY_PAID, J.DONE) in kept
    assert ((J.OPERATE, J.BEGUN) in kept) == (cut == "after_write")  # mid_write: the cut write is gone
    # A half-written temporary file of another store, as a cut inside write_atomic leaves it.
    stray = disk / ".maintenance.json.abcd1234.tmp"
    stray.write_bytes(b'{"version": 1, "pin_ha')
    queued = disk / "heartbeat" / "queue" / ".hb-000000000007.json.k2j9xab1.tmp"
    queued.parent.mkdir(parents=True, exist_ok=True)
    queued.write_bytes(b'{"seq": 7, "trans')
    updater = disk / "update" / ".last.json.zz81kq0a.tmp"  # kiosk-update's, perhaps being written now
    updater.parent.mkdir(parents=True, exist_ok=True)
    updater.write_bytes(b'{"outcome": "ok"}')

    rt = Runtime.from_config(flows.config_for(fresh_sim.url, disk))  # start-up: sweep, recover
    try:
        entries = [e for e in rt.journal.entries() if e.txn_id == txn_id]
        kinds = {(e.kind, e.state) for e in entries}
        assert (J.PAY_PAID, J.DONE) in kinds  # the payment was durable before the cut
        [action] = [a for a in rt.recovered if a.txn_id == txn_id]
        assert "operate_resumed" in action.actions, action
        assert (J.OPERATE, J.DONE) in kinds
        assert not stray.exists() and not queued.exists()
        assert updater.exists()  # another process's folder is left alone
    finally:
        rt.stop()
    assert _integrity(disk / J.DB_FILE) == "ok"
    effects = [e["kind"] for e in flows.sim_effects(fresh_sim.url)]
    charged = effects.count("payment_paid") - effects.count("payment_refund")
    assert charged == 1 and effects.count("operation") == 1, effects  # paid once, served once


def test_a_cut_inside_the_first_journal_write_leaves_an_openable_empty_journal(tmp_path):
    state = tmp_path / "state"
    journal = J.Journal(state)
    wal = state / (J.DB_FILE + "-wal")
    before = wal.stat().st_size
    journal.begin("k1", "t1", "H01", "produce", J.OPERATE)
    after = wal.stat().st_size
    disk = _cut_copy(state, tmp_path / "disk")
    journal.close()
    _truncate(disk / (J.DB_FILE + "-wal"), before + (after - before) - 1)  # the commit frame's last byte missing
    reopened = J.Journal(disk)
    try:
        assert reopened.entries() == []  # the old state: nothing, not a broken row
        reopened.begin("k2", "t2", "H01", "produce", J.OPERATE)  # and it takes new writes
        assert [e.key for e in reopened.entries()] == ["k2"]
    finally:
        reopened.close()
    assert _integrity(disk / J.DB_FILE) == "ok"


# --- the statistics: the last count may go, the file never breaks ------------------------
@pytest.mark.parametrize("cut", ["mid_write", "after_write"])
def test_stats_keep_the_old_or_the_new_count(tmp_path, cut):
    state = tmp_path / "state"
    stats = Stats(state)
    assert stats.record("H01", "completed", 10.0)
    wal = state / (stats.path.name + "-wal")
    before = wal.stat().st_size
    assert stats.record("H01", "completed", 20.0)
    after = wal.stat().st_size
    assert after > before
    disk = _cut_copy(state, tmp_path / "disk")
    if cut == "mid_write":
        _truncate(disk / (stats.path.name + "-wal"), before + (after - before) // 2)
    reopened = Stats(disk)
    [item] = [i for i in reopened.report().to_dict()["items"] if i["item_id"] == "H01"]
    assert item["counts"]["completed"] == (1 if cut == "mid_write" else 2)
    assert _integrity(disk / stats.path.name) == "ok"


def test_every_sqlite_store_commits_with_synchronous_full(tmp_path):
    journal, stats = J.Journal(tmp_path), Stats(tmp_path)
    try:
        for db in (journal._db, stats._db):
            assert db is not None
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        journal.close()


# --- file stores: a cut inside write_atomic keeps the old file ---------------------------
def _cut_inside_write_atomic(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    """Make ``module``'s next write_atomic stop at the power cut: half its bytes in the temp file."""
    def half_then_cut(path: Any, data: bytes, mode: int = 0o600) -> Path:
        target = Path(path)
        fd, _tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.write(fd, data[: len(data) // 2])
        os.close(fd)
        raise PowerCut

    monkeypatch.setattr(module, "write_atomic", half_then_cut)


def _maintenance_store(state: Path) -> tuple[Callable[[], None], Callable[[], None], Callable[[], Any]]:
    access = MaintenanceAccess.for_state_dir(state, scrypt_n=2 ** 4)

    def wrong() -> None:
        with pytest.raises(WrongPin):
            access.check("000000")

    return (lambda: access.set_pin("246813")), wrong, (lambda: access.status().attempts_left)


def _update_now_store(state: Path) -> tuple[Callable[[], None], Callable[[], None], Callable[[], Any]]:
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    return ((lambda: update_status.request_update_now(state, "c-old", later)),
            (lambda: update_status.request_update_now(state, "c-new", later)),
            (lambda: (update_status.pending_update_now(state) or {}).get("command_id")))


def _resume_store(state: Path) -> tuple[Callable[[], None], Callable[[], None], Callable[[], Any]]:
    held = session.Session(state)
    return ((lambda: held.save_resume({"step": "pay"})), (lambda: held.save_resume({"step": "produce"})),
            (lambda: (session.load_resume(state, held.id) or {}).get("step")))


def _config_store(state: Path) -> tuple[Callable[[], None], Callable[[], None], Callable[[], Any]]:
    from kiosk import config as kconfig
    from provisioning import init_config

    path = state / "kiosk.toml"

    def write(name: str) -> Callable[[], None]:
        return lambda: init_config.write_config(path, {"terminal": {"name": name}}, force=True) and None

    return write("旧站"), write("新站"), (lambda: kconfig.load(path).terminal.name)


@pytest.mark.parametrize("store, module", [(_maintenance_store, maintenance), (_update_now_store, update_status),
                                           (_resume_store, None), (_config_store, init_config)])
def test_file_stores_keep_the_old_state_after_a_cut_and_start_up_sweeps_the_temp(tmp_path, monkeypatch,
                                                                                  store, module):
    state = tmp_path / "state"
    state.mkdir()
    write_old, write_new, read = store(state)
    write_old()
    old = read()
    _cut_inside_write_atomic(monkeypatch, module or durable)  # save_resume imports it from kiosk.durable
    with pytest.raises(PowerCut):
        write_new()
    monkeypatch.undo()
    temps = [p for p in state.rglob("*.tmp")]
    assert len(temps) == 1  # the half-written new state is on the disk, beside the old one
    assert read() == old  # the old state is what the store reads
    durable.remove_stale_temps(temps[0].parent)
    assert not temps[0].exists()
    write_new()  # and the store takes the write it lost
    assert read() != old


def test_write_atomic_leaves_the_new_content_durable_and_no_temp(tmp_path):
    target = tmp_path / "a" / "store.json"
    durable.write_atomic(target, b"one")
    durable.write_atomic(target, b"two", 0o640)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["store.json"]


def test_replace_durably_moves_a_finished_download_into_place(tmp_path):
    part, dest = tmp_path / "w.part", tmp_path / "releases" / "w.whl"
    dest.parent.mkdir()
    part.write_bytes(b"wheel")
    assert durable.replace_durably(part, dest) == dest
    assert dest.read_bytes() == b"wheel" and not part.exists()


def test_the_start_up_sweep_removes_only_write_atomic_temps(tmp_path):
    keep = [tmp_path / n for n in ("journal.sqlite3", "store.json", ".hidden", "x.tmp", ".a.tmp")]
    for p in keep:
        p.write_bytes(b"x")
    stale = tmp_path / ".store.json.k2j_9xab.tmp"
    stale.write_bytes(b"{")
    assert durable.remove_stale_temps(tmp_path) == [stale]
    assert all(p.exists() for p in keep)
