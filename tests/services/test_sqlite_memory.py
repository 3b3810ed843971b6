"""SQLite's page cache is bounded in every store: the default 2,000 KiB per connection filled slowly as the stores grew
(the UI soak: 4 KiB more of the C heap per resident, session after session)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kiosk.backend_sim.db import Database
from kiosk.durable import SQLITE_CACHE_KIB
from kiosk.services.journal import Journal
from kiosk.services.stats import Stats

# In a process of its own, so that no other connection's pages are counted: a store grown to about 4 MiB with rows
# written and read back by key, then SQLite's own count of the memory it holds (sqlite3_memory_used).
GROW = r"""
import ctypes, sqlite3, sys
from kiosk.durable import connect_sqlite
lib = ctypes.CDLL("libsqlite3.so.0")
lib.sqlite3_memory_used.restype = ctypes.c_int64
path, bounded = sys.argv[1], sys.argv[2] == "1"
db = connect_sqlite(path, isolation_level=None) if bounded else sqlite3.connect(path, isolation_level=None)
db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
start = lib.sqlite3_memory_used()
for n in range(20000):
    if n % 1000 == 0:
        db.execute("BEGIN")  # a commit per 1,000 rows: fsyncs are not what this measures
    db.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 200))
    db.execute("SELECT v FROM t WHERE k = ?", (n // 2,)).fetchone()
    if n % 1000 == 999:
        db.execute("COMMIT")
print((lib.sqlite3_memory_used() - start) // 1024)
"""


def _grown_kib(tmp_path: Path, bounded: bool) -> int:
    done = subprocess.run([sys.executable, "-c", GROW, str(tmp_path / f"grow-{int(bounded)}.db"), str(int(bounded))],
                          capture_output=True, text=True, check=True, timeout=120)
    return int(done.stdout)


def test_a_growing_store_holds_at_most_its_cache_bound(tmp_path: Path) -> None:
    unbounded, bounded = _grown_kib(tmp_path, False), _grown_kib(tmp_path, True)
    print(f"SQLite's memory after the store grew: {unbounded} KiB by default, {bounded} KiB bounded")
    assert unbounded > 1500  # SQLite's default: its pages kept up to 2,000 KiB
    assert bounded < SQLITE_CACHE_KIB + 128, (bounded, unbounded)


def test_every_store_opens_with_the_bound(tmp_path: Path) -> None:
    journal, stats = Journal(tmp_path), Stats(tmp_path)
    sim = Database.open(str(tmp_path / "sim.db"))
    try:
        for db in (journal._db, stats._db, sim.conn):
            assert db is not None
            assert db.execute("PRAGMA cache_size").fetchone()[0] == -SQLITE_CACHE_KIB
    finally:
        journal.close()
        stats.close()
        sim.close()
