"""Simulated PC/SC chip reader: holds the demo passports and permits (DEMO_TRAVEL_DOCUMENTS).

A read opens the chip only when the MRZ access data given (document number, birth and
expiry dates, YYMMDD) match the document on the reader, as Basic Access Control does;
otherwise it fails with BacFailed. Placement works as in the ID card simulator.

Options: ``document`` (number of the demo document placed at start; default 王小明's
permit), ``document_on_reader`` (default true), ``delay_s``.
Faults: no_card, card_removed_mid_read, timeout, garbage, offline.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from kiosk.errors import (BacFailed, CardRemoved, ConfigError, DeviceOffline, DeviceProtocolError,
                          DeviceTimeout, NoCard)
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.pcsc import ChipReader
from kiosk.hardware.simulators.cards import DEMO_TRAVEL_DOCUMENTS, TravelDocument, travel_document_by_number
from kiosk.hardware.simulators.faults import SimulatedDevice

DEFAULT_DOCUMENT = DEMO_TRAVEL_DOCUMENTS[0].document_number  # 王小明's Hong Kong/Macau permit


def _mrz_number(text: str) -> str:
    # The MRZ pads the number with '<' and uses upper case; residents type it either way.
    return text.strip().upper().rstrip("<")


class SimChipReader(SimulatedDevice, ChipReader):
    """PC/SC chip reader simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"no_card", "card_removed_mid_read", "timeout", "garbage", "offline"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "document": DEFAULT_DOCUMENT, "document_on_reader": True}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        try:
            self.default_document = travel_document_by_number(str(self.options["document"]))
        except KeyError:
            where = f"devices.{name}.options.document"
            raise ConfigError(f"{where}: not the number of a demo travel document", key=where,
                              value=self.options["document"]) from None
        self._doc: TravelDocument | None = (self.default_document if self.options["document_on_reader"]
                                            else None)
        self._placements = 0
        self.reads = 0

    def place(self, document: TravelDocument | str) -> None:
        """Put a document on the reader: a TravelDocument or a demo document number. Raises KeyError."""
        doc = travel_document_by_number(document) if isinstance(document, str) else document
        with self._changed:
            self._doc = doc
            self._placements += 1
            self._changed.notify_all()

    def present(self) -> None:
        """Put the configured default document on the reader."""
        self.place(self.default_document)

    def remove(self) -> None:
        """Take the document off the reader."""
        with self._changed:
            self._doc = None
            self._changed.notify_all()

    def document_present(self) -> bool:
        """True while a document is on the reader. Raises DeviceOffline."""
        with self._sim_lock:
            if self._on("offline"):
                raise DeviceOffline("chip reader does not answer", device=self.name)
            return self._doc is not None and not self._on("no_card")

    def read_document(self, document_number: str, birth_date: str, expiry_date: str,
                      timeout: float = 15.0) -> IdentityCard:
        """Open the chip with the MRZ access data and read it.

        Raises NoCard, CardRemoved, DeviceProtocolError, DeviceTimeout, DeviceOffline, BacFailed.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changed:
            self._raise_if_broken()
            if self._take("no_card"):
                raise NoCard("no chip in the field", device=self.name)
            while self._doc is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoCard("no document placed in time", device=self.name)
                self._changed.wait(left)
                self._raise_if_broken()
            doc, placement = self._doc, self._placements
            self._busy += 1
        try:
            if self._take("card_removed_mid_read"):
                self._pause(0.5)
                self.remove()
                raise CardRemoved("document lifted during the read", device=self.name)
            if (_mrz_number(document_number) != doc.document_number or birth_date.strip() != doc.birth_date
                    or expiry_date.strip() != doc.expiry_date):
                raise BacFailed("the chip refused the access keys", device=self.name)
            self._pause()
            with self._sim_lock:
                if self._doc is not doc or self._placements != placement:
                    raise CardRemoved("document lifted during the read", device=self.name)
                if self._take("garbage"):
                    raise DeviceProtocolError("secure messaging MAC check failed", device=self.name)
                self.reads += 1
                return doc.holder
        finally:
            with self._sim_lock:
                self._busy -= 1

    def _raise_if_broken(self) -> None:
        if self._hit("offline"):
            raise DeviceOffline("chip reader does not answer", device=self.name)
        if self._take("timeout"):
            raise DeviceTimeout("chip did not answer in time", device=self.name)

    def status(self) -> DeviceStatus:
        """Offline, hardware error (timeouts, garbage), busy while reading, else online. Never raises."""
        with self._sim_lock:
            if self._on("offline"):
                return status(DeviceState.OFFLINE, detail="chip reader does not answer")
            if self._on("timeout") or self._on("garbage"):
                return status(DeviceState.HARDWARE_ERROR, detail="chip answers late or garbled")
            if self._busy:
                return status(DeviceState.BUSY)
            return status(DeviceState.ONLINE)
