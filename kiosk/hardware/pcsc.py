"""PC/SC contact/contactless reader for passport and permit chips: the interface.

A reader reports what the chip proved, not whether to trust it: the identity it returns
carries in ``extra`` the passive-authentication result (``sod_present``, ``hashes_valid``,
``chain_valid``: "true", "false" or "none" when not checked) and the access data DG1 holds
(``dg1_document_number``, ``dg1_birth_date``, ``dg1_expiry_date``, dates YYMMDD), so the
identify step in services can refuse a chip that does not prove itself.
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from kiosk.hardware.base import Device
from kiosk.hardware.icao.mrz import Mrz
from kiosk.hardware.idcard import IdentityCard

if TYPE_CHECKING:  # pa imports cryptography and asn1crypto (~80 ms): loaded by the drivers that read a chip
    from kiosk.hardware.icao.pa import PassiveAuthResult


def chip_evidence(dg1: Mrz, result: PassiveAuthResult) -> dict[str, str]:
    """The ``IdentityCard.extra`` entries a chip read reports for the identify step to judge."""
    def flag(value: bool | None) -> str:
        return "none" if value is None else str(bool(value)).lower()

    return {"sod_present": flag(result.sod_present), "hashes_valid": flag(result.hashes_valid),
            "chain_valid": flag(result.chain_valid), "dg1_document_number": dg1.document_number,
            "dg1_birth_date": dg1.birth_date, "dg1_expiry_date": dg1.expiry_date}


class ChipReader(Device):
    """Reads an ICAO 9303 chip (passport, travel permit) given the MRZ access data."""

    kind = "pcsc"

    @abc.abstractmethod
    def read_document(self, document_number: str, birth_date: str, expiry_date: str,
                      timeout: float = 15.0) -> IdentityCard:
        """Read the chip with BAC keys from the MRZ fields (dates YYMMDD).

        Raises NoCard, CardRemoved, DeviceProtocolError, DeviceError(code bac_failed).
        """
