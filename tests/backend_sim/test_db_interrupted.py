"""A signal handler's exception that comes just after a COMMIT leaves the simulator's database as it was, and goes on
out unchanged: the soak stopped by SIGTERM during a reseed once exited 1 ("cannot rollback - no transaction is
active") instead of 143."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.backend_sim import db as sim_db


def test_an_exit_after_the_commit_of_a_transaction_goes_on_out(tmp_path: Path) -> None:
    database = sim_db.Database.open(str(tmp_path / "sim.db"))
    try:
        with pytest.raises(SystemExit) as stopped:
            with database.transaction() as conn:
                conn.execute("INSERT INTO meta VALUES ('probe', 'x')")
                conn.execute("COMMIT")  # the commit went through ...
                raise SystemExit(143)  # ... and the handler's exit came before the next line
        assert stopped.value.code == 143
        assert database.conn.execute("SELECT value FROM meta WHERE key = 'probe'").fetchone()[0] == "x"
        with pytest.raises(KeyError):  # a failure inside the transaction still rolls it back
            with database.transaction() as conn:
                conn.execute("INSERT INTO meta VALUES ('undone', 'y')")
                raise KeyError("undone")
        assert database.conn.execute("SELECT 1 FROM meta WHERE key = 'undone'").fetchone() is None
    finally:
        database.close()


def test_an_exit_after_a_reseeds_commit_goes_on_out(tmp_path: Path, monkeypatch: Any) -> None:
    database = sim_db.Database.open(str(tmp_path / "sim.db"))
    seed = sim_db._seed_records

    def seed_then_commit_then_stop(conn: Any, modules: Any) -> None:
        seed(conn, modules)
        conn.execute("COMMIT")
        raise SystemExit(143)

    monkeypatch.setattr(sim_db, "_seed_records", seed_then_commit_then_stop)
    try:
        with pytest.raises(SystemExit) as stopped:
            database.reseed_records()
        assert stopped.value.code == 143
        assert database.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        database.close()
