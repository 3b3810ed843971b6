"""Second-generation resident ID card reader: the interface and the identity record it yields.

The real GA 467 SAM driver (serial and USB) comes with the identity issue; the simulator
lives in ``kiosk.hardware.simulators``. The reader reports what the card says; rules such
as refusing an expired card belong to the identify step in services.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

from kiosk.hardware.base import Device


@dataclass(frozen=True, repr=False)
class IdentityCard:
    """What an identity document says. Personal data: never log it, never journal it."""

    card_type: str  # resident, foreign_permanent, hkmt_residence, passport, permit
    name: str
    id_number: str
    sex: str = "unknown"  # male, female, unknown
    ethnicity: str = ""
    ethnicity_code: str = ""
    birth_date: str = ""  # YYYY-MM-DD
    address: str = ""
    issuer: str = ""
    valid_from: str = ""  # YYYY-MM-DD
    valid_to: str = ""  # YYYY-MM-DD or "long-term"
    photo: bytes = b""  # opaque WLT bytes from the card
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep personal data out of tracebacks and debug logs
        from kiosk.privacy import mask_id_number, mask_name

        return f"IdentityCard({self.card_type}, {mask_name(self.name)}, {mask_id_number(self.id_number)})"


class IdCardReader(Device):
    """Reads the resident ID card placed on the reader."""

    kind = "id_card"

    @abc.abstractmethod
    def read_card(self, timeout: float = 10.0) -> IdentityCard:
        """Wait up to ``timeout`` s for a card and read it.

        Raises NoCard (nothing placed in time), CardRemoved, DeviceProtocolError,
        DeviceTimeout, DeviceOffline.
        """

    @abc.abstractmethod
    def card_present(self) -> bool:
        """True while a card is in the field. Raises DeviceOffline."""
