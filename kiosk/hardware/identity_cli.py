"""`kiosk hw idcard read`, `kiosk hw passport read`, `kiosk hw readers`: identity devices by hand.

Each prints one JSON object (with --json) or a short text summary. Any failure becomes a
KioskError, which kiosk.cli turns into ``{"error": {"code", "message"}}`` and a non-zero
exit; unexpected exceptions are wrapped here so a technician never sees a traceback.
"""
from __future__ import annotations

import argparse
import functools
import json
import re
from typing import Any, Callable

from kiosk.errors import ConfigError, DeviceError, KioskError
from kiosk.hardware.idcard import IdentityCard

_DEVICE_RE = re.compile(r"^(?:serial:(?P<port>.+)|usb:(?P<vid>[0-9A-Fa-f]{4}):(?P<pid>[0-9A-Fa-f]{4}))$")


def _no_traceback(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except KioskError:
            raise
        except Exception as exc:  # a bug or an unexpected library error: still a typed answer
            raise DeviceError(f"{type(exc).__name__}: {exc}") from None
    return wrapper


def identity_to_dict(card: IdentityCard) -> dict[str, Any]:
    """The JSON form of an ID card read (the fields `kiosk hw idcard read --json` prints)."""
    out: dict[str, Any] = {
        "card_type": card.card_type, "name": card.name, "sex": card.sex,
        "ethnicity": card.ethnicity, "ethnicity_code": card.ethnicity_code,
        "birth_date": card.birth_date, "address": card.address, "id_number": card.id_number,
        "issuer": card.issuer, "valid_from": card.valid_from, "valid_to": card.valid_to,
        "photo": {"format": "wlt" if card.photo else "none", "size": len(card.photo)},
    }
    for key, value in card.extra.items():
        out.setdefault(key, value)
    return out


def reader_options(device: str, baud: int) -> dict[str, Any]:
    """serial:/dev/ttyX or usb:VVVV:PPPP → SamIdCardReader options. Raises ConfigError."""
    match = _DEVICE_RE.match(device)
    if not match:
        raise ConfigError("--device must be serial:/dev/ttyX or usb:VVVV:PPPP", key="device", value=device)
    if match.group("port"):
        return {"port": match.group("port"), "baud": baud}
    return {"vendor_id": int(match.group("vid"), 16), "product_id": int(match.group("pid"), 16)}


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(text)


@_no_traceback
def cli_idcard(args: argparse.Namespace) -> int:
    """`kiosk hw idcard read`: read the card on a GA 467 reader and print what it says."""
    from kiosk.hardware.idcard_sam import SamIdCardReader
    from kiosk.privacy import mask_id_number, mask_name

    reader = SamIdCardReader("id_card", reader_options(args.device, args.baud))
    try:
        card = reader.read_card(timeout=args.timeout)
    finally:
        reader.close()
    data = identity_to_dict(card)
    _emit(args, data, f"{card.card_type}: {mask_name(card.name)} {mask_id_number(card.id_number)} "
                      f"valid to {card.valid_to}")
    return 0


def passport_to_dict(result: Any) -> dict[str, Any]:
    """The JSON form of a chip read (the fields `kiosk hw passport read --json` prints)."""
    return result.to_dict()


def passport_options(args: argparse.Namespace) -> dict[str, Any]:
    """Reader options: the config's devices.pcsc options (trust store), then --reader."""
    from kiosk import config

    cfg = config.load(getattr(args, "config", None))
    device = cfg.devices.get("pcsc")
    options = dict(device.options) if device is not None and device.driver == "pcsc" else {}
    if args.reader:
        options["reader"] = args.reader
    return options


@_no_traceback
def cli_passport(args: argparse.Namespace) -> int:
    """`kiosk hw passport read`: BAC with the MRZ data, read EF.COM, DG1, DG2, EF.SOD, check them."""
    from kiosk.hardware.pcsc_reader import PcscChipReader
    from kiosk.privacy import mask_name

    reader = PcscChipReader("pcsc", passport_options(args))
    try:
        result = reader.read_chip(args.document_number, args.birth_date, args.expiry_date,
                                  timeout=getattr(args, "timeout", 15.0))
    finally:
        reader.close()
    data = result.to_dict()
    pa = data["passive_authentication"]
    _emit(args, data, f"{data['document_code']} {data['issuing_state']} {mask_name(data['surname'])}: "
                      f"hashes_valid={pa['hashes_valid']} chain_valid={pa['chain_valid']}")
    return 0


@_no_traceback
def cli_readers(args: argparse.Namespace) -> int:
    """`kiosk hw readers`: list the PC/SC readers and whether a card is in each."""
    from kiosk.hardware.pcsc_reader import list_readers

    readers = list_readers()
    data = {"readers": [r.to_dict() for r in readers]}
    _emit(args, data, "\n".join(f"{r.name}{' (card)' if r.card_present else ''}" for r in readers)
          or "no PC/SC readers")
    return 0


@_no_traceback
def cli_scanner(args: argparse.Namespace) -> int:
    """`kiosk hw scanner read`: wait for one code on a serial-mode scanner and say what it was.

    A travel document's MRZ is personal data: only its kind and whether its check digits
    hold are printed, never its text. Other codes are printed as read.
    """
    from kiosk.errors import DeviceProtocolError
    from kiosk.hardware.icao.mrz import parse_mrz
    from kiosk.hardware.serial_scanner import SerialScanner

    scanner = SerialScanner("scanner", {"port": args.port, "encoding": args.encoding})
    try:
        text = scanner.scan(timeout=args.timeout)
    finally:
        scanner.close()
    data: dict[str, Any] = {"length": len(text)}
    try:
        mrz = parse_mrz(text)
    except DeviceProtocolError:
        data.update(kind="code", text=text)
        summary = f"code ({len(text)} characters): {text}"
    else:
        data.update(kind="mrz", document_code=mrz.document_code, issuing_state=mrz.issuing_state,
                    checks_ok=mrz.checks_ok)
        summary = f"MRZ {mrz.document_code} {mrz.issuing_state}: check digits {'ok' if mrz.checks_ok else 'WRONG'}"
    _emit(args, data, summary)
    return 0
