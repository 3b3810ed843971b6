"""One resident's session: the only place personal data lives, in memory and in one folder.

A session holds the identity read from the card, the form values, the documents the
backend returned and any face image, plus one folder ``<state_dir>/sessions/<random>/``
for files (rendered PDFs, the resume record crash recovery needs). ``end(reason)``
overwrites and deletes every file of the folder and of the spool that belongs to the
session, clears the fields, and makes the log filter forget the session's names.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any

from kiosk.hardware.idcard import IdentityCard
from kiosk.privacy import MASKING_FILTER

log = logging.getLogger(__name__)

RESUME_FILE = "resume.json"


class EndReason(str, enum.Enum):
    """Why a session ended."""

    DONE = "done"
    CANCEL = "cancel"
    TIMEOUT = "timeout"
    RECOVERED = "recovered"  # left behind by a crash and settled at start-up


def _zero_file(fd: int) -> None:
    """Overwrite the whole file behind ``fd`` with zeros and flush it to disk."""
    size = os.fstat(fd).st_size
    chunk = b"\0" * 65536
    done = 0
    while done < size:
        done += os.pwrite(fd, chunk[: min(size - done, len(chunk))], done)
    os.fsync(fd)


def shred(path: Path) -> None:
    """Overwrite a file with zeros, flush it to disk, then delete it; missing files are ignored."""
    try:
        fd = os.open(path, os.O_RDWR)
        try:
            _zero_file(fd)
        finally:
            os.close(fd)
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # still try to delete what could not be overwritten
        log.warning("shred of a session file failed: %s", exc.strerror)
        path.unlink(missing_ok=True)


def shred_tree(folder: Path) -> None:
    """Shred every file below ``folder`` and remove the folders."""
    if not folder.exists():
        return
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            shred(Path(dirpath) / name)
    shutil.rmtree(folder, ignore_errors=True)


class Session:
    """Personal data of one resident for one visit, and its folder."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.id = secrets.token_hex(16)
        self.folder = self.state_dir / "sessions" / self.id
        self.folder.mkdir(parents=True, mode=0o700)
        self.spool_dir = self.state_dir / "spool"
        self.identity: IdentityCard | None = None
        self.fields: dict[str, Any] = {}
        self.documents: list[dict[str, Any]] = []
        self.face_image: bytes | bytearray | None = None  # the live photo sent to the face compare
        self.display: list[dict[str, str]] = []
        self.ended: EndReason | None = None
        self._lock = threading.Lock()

    # --- personal data ---------------------------------------------------------------
    def set_identity(self, card: IdentityCard) -> None:
        """Hold the resident's identity and teach the log filter to mask their name and address."""
        self.identity = card
        MASKING_FILTER.register(card.name, card.address, card.id_number)

    def keep_face_image(self, image: bytes | bytearray) -> None:
        """Hold the live photo of this try (the previous try's, when it was ours to change, is zeroed)."""
        _zero_buffer(self.face_image)
        self.face_image = image

    def held(self) -> tuple[str, ...]:
        """What of the resident the session holds now, in the order it is gathered: identity, face_photo, form, results."""
        held = []
        if self.identity is not None:
            held.append("identity")
        if self.face_image is not None:
            held.append("face_photo")
        if any(not name.startswith("_") and value not in ("", None) for name, value in self.fields.items()):
            held.append("form")
        if self.documents or self.display:
            held.append("results")
        return tuple(held)

    @property
    def id_number(self) -> str:
        """The resident's ID number, or empty when no card was read."""
        return self.identity.id_number if self.identity else ""

    def file(self, name: str) -> Path:
        """A path inside the session folder (the name must be a plain file name)."""
        if "/" in name or name.startswith("."):
            raise ValueError("session file names are plain names")
        return self.folder / name

    def spool_file(self, name: str) -> Path:
        """A path in the spool owned by this session (removed after printing and at end)."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        return self.spool_dir / f"{self.id}-{name}"

    def save_resume(self, record: dict[str, Any]) -> None:
        """Persist what crash recovery needs to finish this session's effect (inside the folder only).

        The record is replaced crash-safely (a new file renamed over the old), which leaves the
        old copy's blocks behind on disk; they are overwritten through a handle kept on it, once
        the new copy is safely in place, so end() has only the last copy left to shred.
        """
        from kiosk.durable import write_atomic

        path = self.file(RESUME_FILE)
        try:
            previous: int | None = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            previous = None
        try:
            write_atomic(path, json.dumps(record, ensure_ascii=False).encode())
            if previous is not None:
                _zero_file(previous)
        finally:
            if previous is not None:
                os.close(previous)

    # --- ending ----------------------------------------------------------------------
    def end(self, reason: EndReason | str) -> None:
        """Wipe the folder, the session's spool files and every personal field; safe to call twice."""
        with self._lock:
            if self.ended is not None:
                return
            self.ended = EndReason(reason)
            shred_tree(self.folder)
            if self.spool_dir.exists():
                # Not glob(f"{id}-*"): each session's pattern would be compiled and kept in re's and pathlib's
                # caches (a new regular expression every session, hundreds of them).
                prefix = f"{self.id}-"
                for path in self.spool_dir.iterdir():
                    if path.name.startswith(prefix):
                        shred(path)
            self.identity = None
            self.fields = {}
            self.documents = []
            _zero_buffer(self.face_image)  # a bytearray (the face step's capture) is zeroed; bytes can only be dropped
            self.face_image = None
            self.display = []
            MASKING_FILTER.forget()
            log.info("session ended: %s", self.ended.value)


def _zero_buffer(buffer: bytes | bytearray | None) -> None:
    if isinstance(buffer, bytearray):
        buffer[:] = bytes(len(buffer))


def load_resume(state_dir: Path, session_id: str) -> dict[str, Any] | None:
    """The resume record a crashed session left, or None when it is gone or unreadable."""
    path = state_dir / "sessions" / session_id / RESUME_FILE
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def wipe_leftovers(state_dir: Path) -> int:
    """Shred every session folder and spool file left by a crash; returns how many were removed."""
    count = 0
    sessions = state_dir / "sessions"
    if sessions.exists():
        for folder in sessions.iterdir():
            if folder.is_dir():
                shred_tree(folder)
                count += 1
    spool = state_dir / "spool"
    if spool.exists():
        for path in spool.iterdir():
            if path.is_file():
                shred(path)
                count += 1
    return count
