"""The UI soak's chip reader on the PC/SC path: a private pcscd with vpcd, and the project's virtual chip in it.

The same parts the hardware tests start (:class:`~kiosk.hardware.simulators.vicc.Pcscd`,
:class:`~kiosk.hardware.simulators.vicc.VpcdChip`), started and stopped here by PID. The kiosk's
``pcsc`` device is the real :class:`~kiosk.hardware.pcsc_reader.PcscChipReader` reading through
pcscd; the travel document a resident lays on it becomes a virtual chip holding that document's
data page, signed by a test CSCA that the reader's trust store holds. Restarting pcscd (the
``pcscd_restart`` fault) is a real restart: the reader's context dies and must come back.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kiosk.hardware.simulators.vicc import VPCD_DRIVER, DemoDocument, Pcscd, TestPki, VirtualChip, VpcdChip

READER_NAME = "Virtual PCD"


def chip_document(document: Any) -> DemoDocument:
    """The data page of a demo travel document (kiosk.hardware.simulators.cards.TravelDocument) as a chip holds it."""
    holder = document.holder
    name_en = str(holder.extra.get("name_en") or "DEMO, RESIDENT")
    surname, _, given = name_en.partition(",")
    code = "P" if holder.card_type == "passport" else "C"
    sex = {"male": "M", "female": "F"}.get(holder.sex, "<")
    nationality = str(holder.extra.get("nationality") or "CHN")
    return DemoDocument(code, nationality, surname.strip(), given.strip(), document.document_number, nationality,
                        document.birth_date, sex, document.expiry_date)


class ChipStation:
    """A private pcscd, a vpcd reader and the virtual chip laid on it or taken off."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("pcscd") is None or not os.path.exists(VPCD_DRIVER):
            raise RuntimeError("the soak needs pcscd and vsmartcard-vpcd (make deps-test installs them)")
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.pki = TestPki()
        self.trust_store = workdir / "csca"
        self.trust_store.mkdir()
        (self.trust_store / "csca.pem").write_bytes(self.pki.csca_pem())
        self.pcscd = Pcscd(workdir)
        self.runner: VpcdChip | None = None
        self._chips: dict[str, VirtualChip] = {}

    def start(self) -> "ChipStation":
        """Start pcscd (waits until it lists the vpcd reader) and the chip's connection thread, card off."""
        self.pcscd.start()
        self.runner = VpcdChip(VirtualChip(pki=self.pki), self.pcscd.port)
        self.runner.remove()  # nothing on the reader until a resident lays a document on it
        self.runner.start()
        return self

    def device_config(self) -> dict[str, Any]:
        """The ``devices.pcsc`` config section for the kiosk: the PC/SC driver on this reader, this trust store."""
        return {"driver": "pcsc", "options": {"reader": READER_NAME, "trust_store": str(self.trust_store)}}

    def place(self, document: Any) -> None:
        """Lay ``document`` (a demo TravelDocument) on the reader."""
        assert self.runner is not None
        chip = self._chips.get(document.document_number)
        if chip is None:
            chip = self._chips[document.document_number] = VirtualChip(chip_document(document), self.pki)
        chip.apdus.clear()  # the chip's record of every command, kept for tests: not the kiosk's memory
        self.runner.remove()
        self.runner.chip = chip
        self.runner.insert()

    def remove(self) -> None:
        """Take the document off the reader."""
        if self.runner is not None:
            self.runner.remove()

    def restart_pcscd(self) -> None:
        """Stop pcscd and start it again (the readers vanish and come back)."""
        self.pcscd.restart()

    def stop(self) -> None:
        """Stop the chip's thread and pcscd (by PID)."""
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        self.pcscd.stop()
