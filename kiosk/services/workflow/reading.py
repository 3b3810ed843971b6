"""Reading the resident's identity document: the ID card reader, or a travel document's chip opened with its MRZ."""
from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from kiosk.errors import DeviceProtocolError, DeviceTimeout, MrzUnreadable, NoDevice
from kiosk.hardware.icao.mrz import parse_mrz
from kiosk.hardware.idcard import IdentityCard
from kiosk.services.catalog import CatalogItem
from kiosk.services.workflow.rules import check_chip

if TYPE_CHECKING:
    from kiosk.hardware.factory import Devices

D = TypeVar("D")


def _device(device: D | None, name: str) -> D:
    if device is None:
        raise NoDevice(f"no {name} is configured", device=name)
    return device


def read_card(devices: Devices, item: CatalogItem, access: tuple[str, str, str] | None, *,
              production: bool) -> IdentityCard:
    """The resident's document: the ID card, or a travel document's chip (checked, :func:`rules.check_chip`).

    A chip opens with BAC keys from ``access`` (typed by the resident) or else from the
    MRZ the scanner reads off the data page. Raises the reader's DeviceError, BacFailed,
    NoDevice, Refused (chip_not_authentic).
    """
    if item.identity == "travel_document":
        if access is None:
            access = parse_mrz(_device(devices.scanner, "scanner").scan()).access_data()
        card = _device(devices.pcsc, "pcsc").read_document(*access)
        check_chip(card, access, production=production)
        return card
    return _device(devices.id_card, "id_card").read_card()


def scan_access(devices: Devices, timeout: float) -> tuple[str, str, str] | None:
    """BAC access data from a travel document's data page under the scanner, None when none came.

    Raises NoDevice, MrzUnreadable (what was scanned is not an MRZ, or its check digits
    do not match), or another DeviceError.
    """
    scanner = _device(devices.scanner, "scanner")
    try:
        text = scanner.scan(timeout)
    except DeviceTimeout:
        return None
    try:
        mrz = parse_mrz(text)
    except DeviceProtocolError as exc:
        raise MrzUnreadable(exc.detail, device="scanner") from None
    if not mrz.checks_ok:
        raise MrzUnreadable("MRZ check digits do not match (misread)", device="scanner")
    number, birth, expiry = mrz.access_data()
    return number.rstrip("<"), birth, expiry


def capture_face(devices: Devices) -> bytes:
    """A still from the camera (JPEG), for a face check without the live step. Raises NoDevice, DeviceError."""
    return _device(devices.camera, "camera").capture()
