"""Logging set-up: one rotating file under ``<state_dir>/logs`` with personal data masked, and the CLI's console.

Every handler installed here carries ``kiosk.privacy.MASKING_FILTER``, so ID numbers,
phone numbers and the names a session registered are masked before a line is written.
Lines are ``key=value`` structured so they can be grepped and shipped as they are. The
console (stderr) shows INFO, or only warnings for a command whose own output is its report
(the headless demo prints one line per flow); the state folder's file keeps every line.
"""
from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from kiosk.privacy import MASKING_FILTER

LOG_FILE = "kiosk.log"
FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MARK = "_kiosk_state_log"
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class _RotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Size-rotated file whose full-disk failures are told once, not as a traceback per line.

    A full disk is an expected state of a 24/7 terminal (the disk guard stops transactions and
    alerts); a traceback on stderr for every log line would only fill the system journal too.
    """

    disk_full = False  # True from the first failed write until a write succeeds again

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self.disk_full and self.stream is not None and not getattr(self, "_failed_now", False):
            self.disk_full = False
            sys.stderr.write(f"kiosk: log file {self.baseFilename} writable again\n")
        self._failed_now = False

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            self._failed_now = True
            if not self.disk_full:
                self.disk_full = True
                sys.stderr.write(f"kiosk: log file {self.baseFilename} not written: disk full\n")
            return
        super().handleError(record)


def setup_console(*, verbose: bool = False, quiet: bool = False) -> None:
    """The CLI's stderr log, masked: DEBUG with ``verbose``, else INFO, but only warnings on screen when ``quiet``.

    ``quiet`` keeps the root at INFO (the state folder's log still gets every line) and only
    raises the console's threshold: Kivy's start-up banner, the embedded simulator's request
    lines and the workflow's steps stay off the screen while the demo reports its flows.
    As :func:`logging.basicConfig`, it adds no handler when the root has some already.
    """
    root = logging.getLogger()
    if not root.handlers:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        if quiet and not verbose:
            console.setLevel(logging.WARNING)
        root.addHandler(console)
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in root.handlers:
        if MASKING_FILTER not in handler.filters:
            handler.addFilter(MASKING_FILTER)


def setup_logging(state_dir: str | os.PathLike[str], *, level: int = logging.INFO,
                  max_bytes: int = 5 * 1024 * 1024, backups: int = 5) -> Path:
    """Send the root logger to ``<state_dir>/logs/kiosk.log`` (rotated, masked); returns the path.

    Calling it again for the same folder does not add a second handler.
    """
    folder = Path(state_dir) / "logs"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / LOG_FILE
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, _MARK, None) == str(path):
            return path
    handler = _RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    setattr(handler, _MARK, str(path))
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(MASKING_FILTER)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    # Handlers added by others (the CLI's stderr handler) must mask too.
    for other in root.handlers:
        if MASKING_FILTER not in other.filters:
            other.addFilter(MASKING_FILTER)
    return path


def teardown_logging(state_dir: str | os.PathLike[str]) -> None:
    """Remove and close the handler ``setup_logging`` installed for ``state_dir``."""
    path = str(Path(state_dir) / "logs" / LOG_FILE)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, None) == path:
            root.removeHandler(handler)
            handler.close()
