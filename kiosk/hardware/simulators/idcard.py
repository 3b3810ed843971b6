"""Simulated ID card reader: holds the demo residents' cards and lets tests script a resident.

A card is either on the reader or not. ``place(card)`` puts one there (a demo card, or any
IdentityCard), ``remove()`` takes it away, ``present()`` puts the configured default back.
A read waits for a card, so a read after a removal waits for the next placement; a card
lifted during the read (``remove()`` from another thread, or the ``card_removed_mid_read``
fault) fails it with CardRemoved and leaves the reader empty, as a real resident's hand would.

Options: ``card`` (ID number of a DEMO_CARDS entry placed at start; default 王小明's),
``card_on_reader`` (start with that card placed; default true), ``delay_s`` (read time).
Faults: no_card, card_removed_mid_read, timeout, garbage, offline.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from kiosk.errors import CardRemoved, ConfigError, DeviceOffline, DeviceProtocolError, DeviceTimeout, NoCard
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.idcard import IdCardReader, IdentityCard
from kiosk.hardware.simulators.cards import DEMO_CARDS, card_by_number
from kiosk.hardware.simulators.faults import SimulatedDevice

DEFAULT_CARD = DEMO_CARDS[0].id_number  # 王小明: the household head with a clean record


class SimIdCardReader(SimulatedDevice, IdCardReader):
    """ID card reader simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"no_card", "card_removed_mid_read", "timeout", "garbage", "offline"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "card": DEFAULT_CARD, "card_on_reader": True}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        try:
            self.default_card: IdentityCard = card_by_number(str(self.options["card"]))
        except KeyError:
            where = f"devices.{name}.options.card"
            raise ConfigError(f"{where}: not the ID number of a demo card", key=where,
                              value=self.options["card"]) from None
        self._card: IdentityCard | None = self.default_card if self.options["card_on_reader"] else None
        self._placements = 0  # counts placements so a read can tell its card was lifted and replaced
        self.reads = 0  # completed reads, for tests and benchmarks

    # --- scripting the resident -------------------------------------------------------
    def place(self, card: IdentityCard | str) -> None:
        """Put a card on the reader: an IdentityCard or the ID number of a demo card. Raises KeyError."""
        placed = card_by_number(card) if isinstance(card, str) else card
        with self._changed:
            self._card = placed
            self._placements += 1
            self._changed.notify_all()

    def present(self) -> None:
        """Put the configured default card on the reader."""
        self.place(self.default_card)

    def remove(self) -> None:
        """Take the card off the reader."""
        with self._changed:
            self._card = None
            self._changed.notify_all()

    # --- the driver ---------------------------------------------------------------------
    def read_card(self, timeout: float = 10.0) -> IdentityCard:
        """Wait up to ``timeout`` s for a card and read it.

        Raises NoCard, CardRemoved, DeviceProtocolError, DeviceTimeout, DeviceOffline.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changed:
            self._raise_if_broken()
            if self._take("no_card"):
                raise NoCard("the reader sees no card", device=self.name)
            while self._card is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoCard("no card placed in time", device=self.name)
                self._changed.wait(left)
                self._raise_if_broken()
            card, placement = self._card, self._placements
            self._busy += 1
        try:
            if self._take("card_removed_mid_read"):
                self._pause(0.5)
                self.remove()
                raise CardRemoved("card lifted during the read", device=self.name)
            self._pause()
            with self._sim_lock:
                if self._card is not card or self._placements != placement:
                    raise CardRemoved("card lifted during the read", device=self.name)
                if self._take("garbage"):
                    raise DeviceProtocolError("reader frame failed its checksum", device=self.name)
                self.reads += 1
                return card
        finally:
            with self._sim_lock:
                self._busy -= 1

    def _raise_if_broken(self) -> None:
        if self._hit("offline"):
            raise DeviceOffline("reader does not answer", device=self.name)
        if self._take("timeout"):
            raise DeviceTimeout("reader did not answer in time", device=self.name)

    def card_present(self) -> bool:
        """True while a card is on the reader. Raises DeviceOffline."""
        with self._sim_lock:
            if self._on("offline"):
                raise DeviceOffline("reader does not answer", device=self.name)
            return self._card is not None and not self._on("no_card")

    def status(self) -> DeviceStatus:
        """Offline, hardware error (timeouts, garbage), busy while reading, else online. Never raises."""
        with self._sim_lock:
            if self._on("offline"):
                return status(DeviceState.OFFLINE, detail="reader does not answer")
            if self._on("timeout") or self._on("garbage"):
                return status(DeviceState.HARDWARE_ERROR, detail="reader answers late or garbled")
            if self._busy:
                return status(DeviceState.BUSY)
            return status(DeviceState.ONLINE)
