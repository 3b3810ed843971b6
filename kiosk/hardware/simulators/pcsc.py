"""Simulated PC/SC chip reader: holds the demo passports and permits (DEMO_TRAVEL_DOCUMENTS).

A read opens the chip only when the MRZ access data given (document number, birth and
expiry dates, YYMMDD) match the document on the reader, as Basic Access Control does;
otherwise it fails with BacFailed. Placement works as in the ID card simulator.

Each demo chip holds real files (``chip_files``): DG1 with its MRZ, DG2 with a face, and
EF.SOD signed by the demo document signer under the demo CSCA, and a read runs the same
passive authentication as the real reader against the trust store (the shipped demo CSCA
unless ``trust_store`` names another), reporting the result with the holder
(``pcsc.chip_evidence``). Forged chips are faults: ``tampered`` (DG1 altered after
signing), ``cloned`` (the presented keys open it, but it holds another document's validly
signed files) and ``no_sod`` (no EF.SOD).

Options: ``document`` (number of the demo document placed at start; default 王小明's
permit), ``document_on_reader`` (default true), ``trust_store`` (CSCA file or folder;
'' = the demo CSCA), ``delay_s``.
Faults: no_card, card_removed_mid_read, timeout, garbage, offline, tampered, cloned, no_sod.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

from kiosk.errors import (BacFailed, CardRemoved, ConfigError, DeviceOffline, DeviceProtocolError,
                          DeviceTimeout, NoCard)
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.icao import lds
from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.pcsc import ChipReader, chip_evidence
from kiosk.hardware.simulators.cards import DEMO_TRAVEL_DOCUMENTS, TravelDocument, travel_document_by_number
from kiosk.hardware.simulators.faults import SimulatedDevice

DEFAULT_DOCUMENT = DEMO_TRAVEL_DOCUMENTS[0].document_number  # 王小明's Hong Kong/Macau permit


def _mrz_number(text: str) -> str:
    # The MRZ pads the number with '<' and uses upper case; residents type it either way.
    return text.strip().upper().rstrip("<")


class SimChipReader(SimulatedDevice, ChipReader):
    """PC/SC chip reader simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"no_card", "card_removed_mid_read", "timeout", "garbage", "offline", "tampered", "cloned",
                        "no_sod"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "document": DEFAULT_DOCUMENT, "document_on_reader": True,
                                  "trust_store": ""}

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
        self._trust: list | None = None

    def trust_store(self) -> list:
        """The CSCA certificates chips are checked against (loaded once). Raises ConfigError."""
        if self._trust is None:
            # Passive authentication and the demo chips' files need cryptography and asn1crypto (~0.11 s of
            # imports): loaded at the first chip read, not before the kiosk's first frame.
            from kiosk.hardware.icao import pa
            from kiosk.hardware.simulators.chip_files import DEMO_TRUST_STORE

            self._trust = pa.load_trust_store(str(self.options["trust_store"]) or DEMO_TRUST_STORE)
        return self._trust

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
                source, files = self._chip(doc)
            return self._verified(source.holder, files)
        finally:
            with self._sim_lock:
                self._busy -= 1

    def _chip(self, doc: TravelDocument) -> tuple[TravelDocument, dict[int, bytes]]:
        """The document whose files the chip holds, and the files (a forged chip's when a fault says so)."""
        from kiosk.hardware.simulators.chip_files import demo_chip_files, tamper_dg1

        source = doc
        if self._take("cloned"):
            # Programmed to open with the presented keys, it holds someone else's genuine files.
            source = next(d for d in DEMO_TRAVEL_DOCUMENTS if d.document_number != doc.document_number)
        files = demo_chip_files(source)
        if self._take("tampered"):
            files[lds.DG1] = tamper_dg1(files[lds.DG1])
        if self._take("no_sod"):
            del files[lds.EF_SOD]
        return source, files

    def _verified(self, holder: IdentityCard, files: dict[int, bytes]) -> IdentityCard:
        """Passive authentication as the real reader runs it; the result travels with the holder."""
        from kiosk.hardware.icao import pa

        dg1 = lds.parse_dg1(files[lds.DG1])
        result = pa.verify(files.get(lds.EF_SOD), {1: files[lds.DG1], 2: files[lds.DG2]}, self.trust_store())
        return dataclasses.replace(holder, extra={**holder.extra, **chip_evidence(dg1, result)})

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
