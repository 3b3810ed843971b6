"""PC/SC contact/contactless reader for passport and permit chips: the interface.

The pyscard driver and ICAO 9303 reading come with the identity issue.
"""
from __future__ import annotations

import abc

from kiosk.hardware.base import Device
from kiosk.hardware.idcard import IdentityCard


class ChipReader(Device):
    """Reads an ICAO 9303 chip (passport, travel permit) given the MRZ access data."""

    kind = "pcsc"

    @abc.abstractmethod
    def read_document(self, document_number: str, birth_date: str, expiry_date: str,
                      timeout: float = 15.0) -> IdentityCard:
        """Read the chip with BAC keys from the MRZ fields (dates YYMMDD).

        Raises NoCard, CardRemoved, DeviceProtocolError, DeviceError(code bac_failed).
        """
