"""24/7 upkeep: log rotation (masked), journal pruning at start and while running, and a full disk."""
from __future__ import annotations

import logging
import logging.handlers
import sqlite3
import types
from pathlib import Path
from typing import Any

import pytest

from kiosk.privacy import mask_id_number
from kiosk.services import journal as J
from kiosk.services.health import DISK_FULL, DiskFull, DiskGuard
from kiosk.services.logs import LOG_FILE, setup_logging, teardown_logging
from kiosk.services.metrics import KioskMetrics
from kiosk.services.runtime import Runtime

ID_NUMBER = "370102199003071234"
DAY = 24 * 3600


class FakeDisk:
    """statvfs stand-in: free space a test sets in MB."""

    def __init__(self, free_mb: float) -> None:
        self.free_mb = free_mb
        self.calls = 0

    def __call__(self, _path: str) -> Any:
        self.calls += 1
        return types.SimpleNamespace(f_bavail=int(self.free_mb * 256), f_frsize=4096, f_blocks=int(64_000 * 256))


# --- log rotation ---------------------------------------------------------------------------
def test_logs_rotate_by_size_keep_a_bounded_number_and_stay_masked(tmp_path: Path) -> None:
    path = setup_logging(tmp_path, max_bytes=2000, backups=3)
    log = logging.getLogger("kiosk.test.rotation")
    try:
        for n in range(200):
            log.warning("reading card %s line %d %s", ID_NUMBER, n, "x" * 40)
    finally:
        teardown_logging(tmp_path)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2", f"{LOG_FILE}.3"]
    for p in path.parent.iterdir():
        text = p.read_text(encoding="utf-8")
        assert p.stat().st_size <= 2000 + 200  # one line may cross the limit before the roll
        assert ID_NUMBER not in text and mask_id_number(ID_NUMBER) in text
    # The newest lines are in the live file, older ones in .3: rotation shifted them.
    assert "line 199" in path.read_text() and "line 199" not in (path.parent / f"{LOG_FILE}.3").read_text()


def test_runtime_rotates_logs_as_the_config_says(sim: Any, tmp_path: Path, flows: Any) -> None:
    cfg = flows.config_for(sim.url, tmp_path / "state", upkeep={"log_max_mb": 0.01, "log_backups": 2})
    rt = Runtime.from_config(cfg)
    try:
        handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)
                       and h.baseFilename == str(rt.state_dir / "logs" / LOG_FILE))
        assert handler.maxBytes == int(0.01 * 1024 * 1024) and handler.backupCount == 2
        for n in range(300):
            logging.getLogger("kiosk.test").warning("card %s n=%d %s", ID_NUMBER, n, "y" * 30)
    finally:
        rt.stop()
    names = sorted(p.name for p in (rt.state_dir / "logs").iterdir())
    assert names == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    assert all(ID_NUMBER not in p.read_text() for p in (rt.state_dir / "logs").iterdir())


# --- journal pruning --------------------------------------------------------------------------
def _age(state: Path, txn_prefix: str, seconds: float) -> None:
    db = sqlite3.connect(state / J.DB_FILE)
    db.execute("UPDATE effects SET updated_at = updated_at - ? WHERE txn_id LIKE ?", (seconds, f"{txn_prefix}%"))
    db.commit()
    db.close()


def test_runtime_start_prunes_the_journal_with_the_configured_retention(sim: Any, tmp_path: Path,
                                                                           flows: Any) -> None:
    state = tmp_path / "state"
    cfg = flows.config_for(sim.url, state, upkeep={"journal_retention_days": 7})
    rt = Runtime.from_config(cfg)
    for txn in ("old", "recent"):  # G05 shows on screen only: nothing owed, recovery leaves them alone
        rt.journal.begin(f"{txn}-1", txn, "G05", "produce", J.OPERATE, id_hash="h")
        rt.journal.complete(f"{txn}-1", {"reference": "R1"})
    rt.stop()
    _age(state, "old", 10 * DAY)
    _age(state, "recent", 3 * DAY)
    rt = Runtime.from_config(cfg, recover_now=False)
    try:
        rt.recover()
        keys = {e.key for e in rt.journal.entries()}
        assert "old-1" not in keys and "recent-1" in keys
    finally:
        rt.stop()


def test_pruning_runs_while_the_kiosk_runs(runtime: Any) -> None:
    runtime.journal.begin("aged-1", "aged", "G05", "produce", J.OPERATE, id_hash="h")
    runtime.journal.complete("aged-1", {"reference": "R2"})
    _age(runtime.state_dir, "aged", 40 * DAY)
    now = [0.0]
    runtime.health.clock = lambda: now[0]
    runtime.health._last_upkeep = 0.0
    runtime.health.step()
    assert any(e.key == "aged-1" for e in runtime.journal.entries())  # not due yet
    now[0] = runtime.health.upkeep_interval_s + 1
    runtime.health.step()
    assert not any(e.key == "aged-1" for e in runtime.journal.entries())


# --- a full disk ------------------------------------------------------------------------------
def test_disk_guard_thresholds_hysteresis_and_alert(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    disk = FakeDisk(500)
    guard = DiskGuard(tmp_path / "not-yet" / "state", 100, 150, statvfs=disk)
    st = guard.check()
    assert not st.low and st.free_mb == pytest.approx(500) and st.path == str(tmp_path)  # nearest existing parent
    disk.free_mb = 99
    with caplog.at_level(logging.INFO, logger="kiosk.services.health"):
        assert guard.check().low
        disk.free_mb = 120  # above the floor but below resume: stays low, no flapping
        assert guard.check().low
        disk.free_mb = 151
        assert not guard.check().low
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "disk low" in r.message]
    assert len(errors) == 1  # one alert per drop, not one per check
    assert any("disk ok again" in r.message for r in caplog.records)


def test_a_disk_that_cannot_be_measured_counts_as_low(tmp_path: Path) -> None:
    def broken(_path: str) -> Any:
        raise OSError(5, "Input/output error")

    st = DiskGuard(tmp_path, 100, statvfs=broken).check()
    assert st.low and st.error == "Input/output error" and st.to_dict()["error"]


def test_real_statvfs_reads_the_state_folder(tmp_path: Path) -> None:
    st = DiskGuard(tmp_path, 1).check()
    assert st.total_mb > 0 and 0 < st.free_mb <= st.total_mb and st.path == str(tmp_path)


def test_full_disk_keeps_guides_stops_the_rest_alerts_and_recovers(runtime: Any) -> None:
    metrics = KioskMetrics(runtime.config.terminal.id)
    runtime.attach_metrics(metrics)
    disk = FakeDisk(10)
    runtime.disk._statvfs = disk
    snap = runtime.health.poll()
    guides = [i for i in runtime.catalog.items if i.kind == "guide"]
    others = [i for i in runtime.catalog.items if i.kind != "guide"]
    assert guides and all(runtime.item_available(g) for g in guides)
    assert all(tuple(runtime.item_available(i)) == (False, DISK_FULL) for i in others)
    assert snap.to_dict()["disk"]["low"] is True and not snap.out_of_service
    assert "kiosk_disk_low 1.0" in metrics.exposition().decode()
    with pytest.raises(DiskFull) as info:
        runtime.engine.start("H01")
    assert info.value.code == "disk_full" and info.value.message("zh_CN") != info.value.message("en")
    assert runtime.engine.active() == []
    guide = runtime.engine.start(guides[0].id)  # guides journal nothing: still served
    guide.cancel()
    guide.finish()
    disk.free_mb = 10_000
    runtime.health.poll()
    assert runtime.item_available(runtime.catalog.get("H01"))
    assert "kiosk_disk_low 0.0" in metrics.exposition().decode()
    txn = runtime.engine.start("H01")
    txn.cancel()
    txn.finish()


def test_upkeep_config_rejects_a_resume_below_the_floor() -> None:
    from kiosk.config import from_dict
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        from_dict({"upkeep": {"min_free_mb": 500, "resume_free_mb": 100}})
    assert "upkeep" in str(info.value)
    assert from_dict({}).upkeep.min_free_mb == 200


class _FullDisk:
    """A file stream on a full file system: every write fails with ENOSPC."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_a: Any, **_k: Any) -> Any:
            import errno

            raise OSError(errno.ENOSPC, "No space left on device")

        return fail


def test_a_full_disk_under_the_log_is_told_once_not_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = setup_logging(tmp_path)
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "") == str(path))
    log = logging.getLogger("kiosk.test.full")
    real = handler.stream
    try:
        handler.stream = _FullDisk()
        for n in range(5):
            log.warning("line %d while full", n)
        err = capsys.readouterr().err
        assert err.count("disk full") == 1 and "Traceback" not in err and "Logging error" not in err
        handler.stream = real
        log.warning("after the disk was cleaned")
        assert "writable again" in capsys.readouterr().err
    finally:
        teardown_logging(tmp_path)
    assert "after the disk was cleaned" in path.read_text() and "while full" not in path.read_text()
