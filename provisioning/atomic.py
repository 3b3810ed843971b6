"""Crash-safe writes: a file or a whole folder appears complete or not at all.

A file is written to a temporary name beside it, fsynced, then ``os.replace``d over the
target, and the folder is fsynced so the rename itself survives a power cut. A folder is
built under a temporary name beside the target and renamed into place; whatever fails
before the rename leaves only the previous state.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# One durable file write for the whole project (kiosk and provisioning alike).
from kiosk.durable import fsync_dir as _fsync_dir
from kiosk.durable import write_atomic

__all__ = ["staged_dir", "write_atomic"]


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty folder beside ``target``; on success it replaces ``target``, on failure it is removed.

    An existing ``target`` is moved aside first and put back if the swap fails, so the
    result is always either the old tree or the complete new one.
    """
    final = Path(target).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging.", dir=final.parent))
    try:
        os.chmod(stage, 0o755)  # mkdtemp makes it 0700; the tree it becomes is a file system root
        yield stage
        _swap_in(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _swap_in(stage: Path, final: Path) -> None:
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        old.rmdir()  # only the unique name is wanted; rename needs it absent
        os.rename(final, old)
        try:
            os.rename(stage, final)
        except BaseException:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(stage, final)
    _fsync_dir(final.parent)
