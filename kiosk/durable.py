"""Writes that survive a power cut: the one helper every store of the terminal uses.

A file is replaced through a temporary name beside it: write, fsync, ``os.replace``, then
fsync the folder so the rename itself reaches the disk. A cut at any moment leaves the old
file or the new one, never a mix, and at worst a stray temporary file that start-up removes
(:func:`remove_stale_temps`). SQLite stores open through :func:`connect_sqlite`: WAL with
``synchronous=FULL``, so a transaction is on the disk when its commit returns (SQLite
checkpoints the WAL into the main file by itself every 1000 pages and replays or drops an
unfinished tail when the database is opened again).
"""
from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

# SQLite's page cache per connection, in KiB. Its default (2,000 KiB) fills slowly as a store grows: in the UI soak
# the journal, the stats and the backend simulator's store took 4 KiB more of the C heap per resident, session after
# session (3 x 2,000 KiB before it would stop). The kiosk's stores are appended to and looked up by key: a small
# cache holds their B-trees' upper pages and the pages being written, and the file's pages stay in the OS's cache.
SQLITE_CACHE_KIB = 256

# ".<target name>.<random>.tmp": what write_atomic leaves behind when the power goes mid-write.
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new names, renames) to the disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> Path:
    """Replace ``path`` with ``data`` durably: on return the new content is on the disk; on a failure or cut the old stays.

    Raises OSError (disk full, read-only file system); the temporary file is then removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def replace_durably(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Rename a finished file (written by someone else: a download) over ``dst``, its bytes and the rename on the disk."""
    fd = os.open(src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)
    return Path(dst)


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a cut left in ``folder`` (not below it); returns what was removed."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return removed
    for name in names:
        path = Path(folder) / name
        if _TEMP_NAME.match(name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        fsync_dir(folder)
    return removed


def connect_sqlite(path: str | os.PathLike[str], **kwargs: Any) -> sqlite3.Connection:
    """Open a SQLite store in WAL mode with ``synchronous=FULL`` (a commit is durable when it returns) and a page
    cache of at most ``SQLITE_CACHE_KIB``.

    Raises sqlite3.DatabaseError when the file is not a database.
    """
    db = sqlite3.connect(path, check_same_thread=False, **kwargs)
    try:
        db.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except BaseException:
        db.close()
        raise
    return db
