"""The display's backlight through the kernel's sysfs interface (``/sys/class/backlight/<device>/``).

A backlight device is a folder holding ``brightness`` (the level now, written to change it)
and ``max_brightness``; the panel's driver decides what the numbers mean. The attract screen
dims the display through it while nobody is at the kiosk and puts the level back when a
resident comes or the kiosk stops. A display without a backlight device (an HDMI monitor, a
virtual machine) or one the kiosk user may not write is left as it is: dimming is a saving,
never a reason to fail, so every problem is logged once and reported as ``False``.
The sysfs root is injectable, so tests run against a fake folder.

A kiosk killed while the display is dimmed would find the dimmed level at its next start and
take it for the normal one: with ``remember`` (a file in the state folder) the level found
before dimming is written there first, durably, and put back by :meth:`Backlight.recover` at start.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from kiosk.durable import write_atomic

log = logging.getLogger(__name__)

SYSFS_BACKLIGHT = Path("/sys/class/backlight")


class Backlight:
    """One backlight device below ``root`` (the first by name, or ``device``); dims and restores its level."""

    def __init__(self, root: str | Path = SYSFS_BACKLIGHT, device: str = "", remember: str | Path | None = None) -> None:
        self.root = Path(root)
        self.device = device
        self.remember = Path(remember) if remember is not None else None
        self._saved: int | None = None  # the level before dimming; None while not dimmed
        self._lock = threading.Lock()
        self._warned = False

    def folder(self) -> Path | None:
        """The device folder in use, or None when there is no backlight device."""
        try:
            names = [self.device] if self.device else sorted(p.name for p in self.root.iterdir())
        except OSError:
            return None
        for name in names:
            path = self.root / name
            if (path / "brightness").is_file() and (path / "max_brightness").is_file():
                return path
        return None

    @property
    def dimmed(self) -> bool:
        """Whether the level is lowered now (and restore() has something to put back)."""
        return self._saved is not None

    def level(self) -> int | None:
        """The brightness level now, or None without a readable device."""
        folder = self.folder()
        return None if folder is None else self._read(folder / "brightness")

    def dim(self, fraction: float) -> bool:
        """Lower the level to ``fraction`` of the maximum (never to 0, which may switch the panel off).

        Remembers the level it found for restore(); a level already lower is left alone.
        Returns whether the level was lowered.
        """
        with self._lock:
            folder = self.folder()
            if folder is None or self._saved is not None:
                return False
            now, top = self._read(folder / "brightness"), self._read(folder / "max_brightness")
            if now is None or top is None or top <= 0:
                return False
            target = max(1, min(top, round(top * fraction)))
            if target >= now:
                return False
            if self.remember is not None:
                try:
                    write_atomic(self.remember, json.dumps({"device": folder.name, "level": now}).encode())
                except OSError as exc:
                    self._warn(f"backlight level not remembered in {self.remember}: {exc.strerror}")
                    return False  # dimmed without a way back after a crash: better not dimmed
            if not self._write(folder / "brightness", target):
                self._forget()
                return False
            self._saved = now
            log.info("backlight %s dimmed: %d -> %d of %d", folder.name, now, target, top)
            return True

    def restore(self) -> bool:
        """Put back the level dim() found; returns whether a level was written."""
        with self._lock:
            saved, self._saved = self._saved, None
            folder = self.folder()
            if saved is None or folder is None:
                return False
            written = self._write(folder / "brightness", saved)
            if written:
                self._forget()
                log.info("backlight %s restored to %d", folder.name, saved)
            return written

    def recover(self) -> bool:
        """At start: put back the level a kiosk that died while dimmed left in ``remember``; returns whether one was."""
        if self.remember is None:
            return False
        try:
            record = json.loads(self.remember.read_text(encoding="utf-8"))
            level, name = int(record["level"]), str(record["device"])
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._warn(f"backlight record {self.remember} unreadable: {exc}")
            self._forget()
            return False
        folder = self.root / name
        written = (folder / "brightness").is_file() and self._write(folder / "brightness", level)
        self._forget()
        if written:
            log.warning("backlight %s put back to %d (the kiosk had stopped while it was dimmed)", name, level)
        return written

    def _forget(self) -> None:
        if self.remember is not None:
            self.remember.unlink(missing_ok=True)

    def _read(self, path: Path) -> int | None:
        try:
            return int(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            self._warn(f"backlight {path} unreadable: {exc}")
            return None

    def _write(self, path: Path, level: int) -> bool:
        # sysfs attributes take one plain write; no temporary file can be renamed over them.
        try:
            path.write_text(f"{level}\n", encoding="ascii")
            return True
        except OSError as exc:  # not writable by the kiosk user: see docs/HARDWARE.md (udev rule)
            self._warn(f"backlight {path} not writable: {exc.strerror}")
            return False

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s (the attract screen does not dim)", message)
