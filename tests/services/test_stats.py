"""Statistics: counts per item and outcome, durations and satisfaction ratings, recorded by the workflow."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk import localtime
from kiosk.services.metrics import KioskMetrics
from kiosk.services.stats import DB_FILE, Stats, StatsError
from kiosk.services.workflow.steps import Step

DAY = 24 * 3600
T0 = time.mktime((2026, 11, 10, 12, 0, 0, 0, 0, -1))  # local noon, 10 November 2026


def test_counts_per_item_and_outcome_with_totals_and_durations(tmp_path: Path) -> None:
    s = Stats(tmp_path)
    for outcome, dur in (("completed", 30), ("completed", 50), ("refused", 10), ("cancelled", None)):
        assert s.record("H01", outcome, dur, at=T0)
    s.record("T03", "failed", 20, at=T0)
    r = s.report()
    h01 = next(i for i in r.items if i.item_id == "H01")
    assert dict(h01.counts) == {"completed": 2, "refused": 1, "cancelled": 1}
    assert h01.total == 4 and h01.mean_duration_s == pytest.approx(30.0)  # (30+50+10)/3 timed
    assert r.totals == {"completed": 2, "refused": 1, "cancelled": 1, "failed": 1, "total": 5}
    with pytest.raises(ValueError):
        s.record("H01", "exploded")


def test_date_range_includes_both_ends(tmp_path: Path) -> None:
    s = Stats(tmp_path)
    for days in (-1, 0, 5, 6):
        s.record("H01", "completed", at=T0 + days * DAY)
    assert s.report("2026-11-10", "2026-11-15").totals["total"] == 2
    assert s.report("2026-11-10").totals["total"] == 3
    assert s.report(None, "2026-11-09").totals["total"] == 1
    assert s.report("2026-12-01").items == ()
    with pytest.raises(StatsError):
        s.report("2026-11-15", "2026-11-10")
    with pytest.raises(StatsError):
        s.report("10/11/2026")


def test_satisfaction_rate_counts_satisfied_and_basically_satisfied(tmp_path: Path) -> None:
    s = Stats(tmp_path)
    assert s.report().satisfaction_rate is None
    for rating in ("satisfied", "satisfied", "basically_satisfied", "dissatisfied"):
        s.record_rating(rating, "h01", at=T0)
    r = s.report()
    assert r.satisfaction_rate == pytest.approx(0.75)
    assert r.to_dict()["satisfaction"] == {"counts": {"satisfied": 2, "basically_satisfied": 1, "dissatisfied": 1},
                                           "total": 4, "rate": 0.75}
    with pytest.raises(ValueError):
        s.record_rating("great")


def test_only_item_ids_are_kept_as_the_rated_item(tmp_path: Path) -> None:
    s = Stats(tmp_path)
    s.record_rating("dissatisfied", "王小明 370102199003071234")
    s.record_rating("satisfied", "t03")
    s.close()
    rows = sqlite3.connect(tmp_path / DB_FILE).execute("SELECT rating, rated_item FROM rating_counts").fetchall()
    assert sorted(rows) == [("dissatisfied", ""), ("satisfied", "T03")]


def test_a_full_database_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = Stats(tmp_path)
    s.record("H01", "completed", at=T0)
    assert s._db is not None
    pages = s._db.execute("PRAGMA page_count").fetchone()[0]
    s._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    ok = True
    for n in range(2000):  # new day rows until a page split is needed
        ok = s.record(f"X{n % 100:02d}", "completed", at=T0 + n * DAY)
        if not ok:
            break
    assert ok is False
    assert any("stats not recorded" in r.message and r.levelname == "ERROR" for r in caplog.records)


# --- recorded by the workflow -----------------------------------------------------------------
def _g05(runtime: Any, rating: str, rated: str = "H01") -> None:
    txn = runtime.engine.start("G05")
    while txn.step is not Step.DONE:
        if txn.step is Step.FORM:
            txn.submit_form({"rating": rating, "rated_item": rated, "reason": "370102199003071234 说得好"})
        elif txn.step is Step.CONFIRM:
            txn.confirm()
        elif txn.step is Step.PRODUCE:
            txn.produce()
        else:
            raise AssertionError(f"unexpected step {txn.step}")
    txn.finish()


def run_flows(runtime: Any, sim_url: str, flows: Any) -> None:
    """H01 completed, H01 cancelled, T03 refused-or-completed by the backend, two G05 ratings."""
    h01 = runtime.engine.start("H01")
    flows.drive(h01, sim_url)
    h01.finish()
    h01.finish()  # a second finish must not count twice
    gone = runtime.engine.start("H01")
    gone.cancel()
    gone.finish()
    _g05(runtime, "satisfied")
    _g05(runtime, "dissatisfied", "")


def test_the_workflow_counts_each_transaction_once_with_metrics(runtime: Any, sim: Any, flows: Any) -> None:
    metrics = KioskMetrics(runtime.config.terminal.id)
    runtime.attach_metrics(metrics)
    run_flows(runtime, sim.url, flows)
    r = runtime.stats.report()
    counts = {i.item_id: dict(i.counts) for i in r.items}
    assert counts["H01"] == {"completed": 1, "cancelled": 1}
    assert counts["G05"] == {"completed": 2}
    assert r.ratings == {"satisfied": 1, "dissatisfied": 1} and r.satisfaction_rate == pytest.approx(0.5)
    text = metrics.exposition().decode()
    assert 'kiosk_transactions_total{item="H01",outcome="completed"} 1.0' in text
    assert 'kiosk_transactions_total{item="H01",outcome="cancelled"} 1.0' in text
    assert "kiosk_transaction_duration_seconds_count 4.0" in text
    # every item of the catalog and every outcome is there from the start, at 0 until it happens
    assert 'kiosk_transactions_total{item="T01",outcome="failed"} 0.0' in text
    assert sum(1 for line in text.splitlines() if line.startswith("kiosk_transactions_total{")) == 4 * len(
        runtime.catalog.items)
    assert 'kiosk_satisfaction_ratings_total{rating="satisfied"} 1.0' in text
    assert 'kiosk_satisfaction_ratings_total{rating="dissatisfied"} 1.0' in text
    assert 'kiosk_satisfaction_ratings_total{rating="basically_satisfied"} 0.0' in text
    # Nothing personal reaches the statistics file: not the typed comment, not the card's number.
    runtime.stats.close()
    raw = (runtime.state_dir / DB_FILE).read_bytes()
    for wal in runtime.state_dir.glob(DB_FILE + "-wal"):
        raw += wal.read_bytes()
    assert b"370102199003071234" not in raw and "说得好".encode() not in raw
    assert flows.card_for(runtime.catalog.get("H01")).id_number.encode() not in raw


def test_cli_stats_json_after_flows(runtime: Any, sim: Any, flows: Any, tmp_path: Path) -> None:
    run_flows(runtime, sim.url, flows)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{runtime.state_dir}"\n')
    today = localtime.today().isoformat()  # the station's day, in which the flows were counted

    def kiosk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "stats", *args],
                              capture_output=True, text=True, timeout=60)

    out = kiosk("--from", today, "--to", today, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    h01 = next(i for i in data["items"] if i["item_id"] == "H01")
    assert h01["counts"] == {"completed": 1, "refused": 0, "cancelled": 1, "failed": 0} and h01["total"] == 2
    assert h01["name_zh"] and h01["mean_duration_s"] is not None
    assert data["totals"]["total"] == 4 and data["satisfaction"]["rate"] == 0.5
    assert data["from"] == today == data["to"] and data["terminal"] == runtime.config.terminal.id
    later = json.loads(kiosk("--from", "2099-01-01", "--json").stdout)
    assert later["items"] == [] and later["totals"]["total"] == 0 and later["satisfaction"]["rate"] is None
    table = kiosk()
    assert table.returncode == 0 and "H01" in table.stdout and "50.0%" in table.stdout
    bad = kiosk("--from", "yesterday", "--json")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["code"] == "stats_error"


def test_cli_stats_without_a_store_reports_zero_and_creates_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "kiosk.toml"
    state = tmp_path / "never"
    cfg.write_text(f'[paths]\nstate_dir = "{state}"\n')
    out = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "stats", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["totals"]["total"] == 0 and not state.exists()


# --- the station chief's table ---------------------------------------------------------------
def _filled(state: Path) -> None:
    """Counts over several real days, as a running kiosk leaves them (through the real Stats store)."""
    stats = Stats(state)
    day = 86400
    for item_id, outcome, days_ago in [("H01", "completed", 9), ("H01", "failed", 3), ("E03", "completed", 3),
                                       ("T04", "refused", 1), ("S01", "completed", 0)]:
        stats.record(item_id, outcome, 42.0, at=time.time() - days_ago * day)
    stats.record_rating("satisfied", "S01")
    stats.record_rating("basically_satisfied")
    stats.record_rating("dissatisfied", at=time.time() - 9 * day)
    stats.close()


def _stats_cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "stats", *args],
                          capture_output=True, text=True, timeout=60)


def test_the_table_names_items_whole_in_the_station_language_with_terminal_and_real_dates(tmp_path: Path) -> None:
    _filled(tmp_path / "state")
    first = (localtime.today() - timedelta(days=9)).isoformat()
    last = localtime.today().isoformat()
    for lang, header, name in [("zh_CN", f"终端 JN-LX-0042 自助业务统计，{first} 至 {last}", "出入境证件申请预受理"),
                               ("en", f"Self-service statistics of terminal JN-LX-0042, {first} to {last}",
                                "Exit-entry document pre-acceptance")]:
        cfg = tmp_path / f"{lang}.toml"
        cfg.write_text(f'[terminal]\nid = "JN-LX-0042"\n[ui]\nlanguage = "{lang}"\n'
                       f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
        out = _stats_cli(cfg)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == header
        e03 = next(line for line in lines if line.startswith("E03"))
        assert name in e03  # whole, not cut at 24 characters
        assert "66.7%" in lines[-1]  # 2 of 3 ratings satisfied or basically satisfied
    data = json.loads(_stats_cli(cfg, "--json").stdout)
    assert (data["first_day"], data["last_day"], data["terminal"]) == (first, last, "JN-LX-0042")
    ranged = _stats_cli(cfg, "--from", "2026-01-01", "--to", "2026-01-31")
    assert ranged.stdout.splitlines()[0].endswith("2026-01-01 to 2026-01-31")


def test_stats_after_a_demo_reads_its_state_folder(tmp_path: Path) -> None:
    """`kiosk demo --state DIR` keeps the statistics in DIR; `kiosk stats --state DIR` shows them."""
    _filled(tmp_path / "demo-state")  # what the demo's runtime leaves there (tests/screens/test_demo.py runs one)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "elsewhere"}"\n')
    assert json.loads(_stats_cli(cfg, "--json").stdout)["totals"]["total"] == 0
    shown = json.loads(_stats_cli(cfg, "--state", str(tmp_path / "demo-state"), "--json").stdout)
    assert shown["totals"]["total"] == 5 and not (tmp_path / "elsewhere").exists()


def test_no_traceback_when_the_reader_goes_away(tmp_path: Path) -> None:
    """`kiosk stats | head`: the reader closes the pipe before the table is written."""
    _filled(tmp_path / "state")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like head, gone before the first line arrives
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "internal_error" not in err, err
    piped = subprocess.run(f"{sys.executable} -m kiosk.cli --config {cfg} stats | head -n 2", shell=True,
                           capture_output=True, text=True, timeout=60)
    assert len(piped.stdout.splitlines()) == 2 and "Traceback" not in piped.stderr
