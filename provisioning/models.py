"""The hardware this software supports, and how a detected device becomes a config table.

``SUPPORTED_MODELS`` is the one table: docs/HARDWARE.md lists the same rows for people.
A row matches a USB vendor:product id (``product_id`` None = any product of that vendor,
for makers whose whole line speaks one protocol), a PC/SC reader name, or a CUPS device
URI. ``suggest_devices`` turns what ``detect`` found into the ``[devices]`` tables of the
config, naming only drivers that ``kiosk.hardware.factory.DRIVERS`` really registers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from kiosk.config import DEVICE_NAMES


@dataclass(frozen=True)
class SupportedModel:
    """One supported product: which config device it serves and how it is reached."""

    device: str  # a config device name: id_card, pcsc, receipt_printer, a4_printer, scanner
    maker: str
    model: str
    connection: str  # usb, serial-bridge, cdc-serial, pcsc, cups, hid
    driver: str  # the config driver name it needs
    vendor_id: int | None = None
    product_id: int | None = None  # None: every product of the vendor
    pcsc_name: str = ""  # substring of the PC/SC reader name
    cups_uri: str = ""  # substring of the CUPS device URI (case-insensitive)
    notes: str = ""

    @property
    def usb_id(self) -> str:
        """"vvvv:pppp" ("vvvv:*" for a whole vendor; "" when not a USB match)."""
        if self.vendor_id is None:
            return ""
        pid = "*" if self.product_id is None else f"{self.product_id:04x}"
        return f"{self.vendor_id:04x}:{pid}"


def _usb(device: str, maker: str, model: str, driver: str, vid: int, pid: int | None,
         notes: str = "", connection: str = "usb") -> SupportedModel:
    return SupportedModel(device, maker, model, connection, driver, vid, pid, notes=notes)


HID_NOTE = ("switch it to USB serial (CDC/COM) mode with the maker's configuration barcode; "
            "it then appears as /dev/ttyACM* and detect suggests driver \"serial\"")
# How a row is reached when it is not a USB device of its own: through the tty of a USB-serial
# bridge, or the tty of a device that speaks USB CDC-ACM itself.
SERIAL_CONNECTIONS = ("serial-bridge", "cdc-serial")

# USB ids: PC/SC rows are those the CCID driver (libccid) lists for the reader; the others
# are the ids the makers' devices enumerate with. `lsusb` on site confirms them.
SUPPORTED_MODELS: tuple[SupportedModel, ...] = (
    # Second-generation ID card readers with a GA 467 SAM module.
    _usb("id_card", "Synjones / Huashi / Jinglun (SDT USB)", "CVR-100U, iDR210 and other GA 467 USB readers",
         "usb", 0x0400, 0xC35A, "GA 467 frames over USB bulk endpoints"),
    _usb("id_card", "WCH", "CH340/CH341 USB-serial bridge (SAM module)", "serial", 0x1A86, 0x7523,
         "serial SAM readers; 115200 baud", "serial-bridge"),
    _usb("id_card", "Prolific", "PL2303 USB-serial bridge (SAM module)", "serial", 0x067B, 0x2303,
         "serial SAM readers; 115200 baud", "serial-bridge"),
    _usb("id_card", "Silicon Labs", "CP210x USB-serial bridge (SAM module)", "serial", 0x10C4, 0xEA60,
         "serial SAM readers; 115200 baud", "serial-bridge"),
    _usb("id_card", "FTDI", "FT232R USB-serial bridge (SAM module)", "serial", 0x0403, 0x6001,
         "serial SAM readers; 115200 baud", "serial-bridge"),
    # Contactless PC/SC readers for passports and travel permits (ICAO 9303 chips).
    SupportedModel("pcsc", "ACS", "ACR1252U", "pcsc", "pcsc", 0x072F, 0x223B, pcsc_name="ACR1252"),
    SupportedModel("pcsc", "ACS", "ACR1281U", "pcsc", "pcsc", 0x072F, 0x2224, pcsc_name="ACR1281"),
    SupportedModel("pcsc", "ACS", "ACR122U", "pcsc", "pcsc", 0x072F, 0x2200, pcsc_name="ACR122",
                   notes="short range; extended APDUs not supported, chunked reads only"),
    SupportedModel("pcsc", "HID Global", "OMNIKEY 5022", "pcsc", "pcsc", 0x076B, 0x5022, pcsc_name="OMNIKEY 5022"),
    SupportedModel("pcsc", "HID Global", "OMNIKEY 5422", "pcsc", "pcsc", 0x076B, 0x5422, pcsc_name="OMNIKEY 5422"),
    SupportedModel("pcsc", "HID Global", "OMNIKEY 5427 CK", "pcsc", "pcsc", 0x076B, 0x5427, pcsc_name="5427"),
    SupportedModel("pcsc", "Identiv", "uTrust 3700 F", "pcsc", "pcsc", 0x04E6, 0x5790, pcsc_name="uTrust 3700"),
    SupportedModel("pcsc", "vsmartcard", "Virtual PC/SC reader (vpcd, test benches only)", "pcsc", "pcsc",
                   pcsc_name="Virtual PCD"),
    # ESC/POS thermal receipt printers.
    _usb("receipt_printer", "Epson", "TM-T88 series (IV, V, VI)", "usb", 0x04B8, 0x0202),
    _usb("receipt_printer", "Epson", "TM-T20 series", "usb", 0x04B8, 0x0E03),
    _usb("receipt_printer", "Winbond-based", "POS-58 / POS-80 class printers (Xprinter and others)", "usb",
         0x0416, 0x5011, "58 mm models: set options.profile = \"58mm\""),
    _usb("receipt_printer", "Bixolon", "SRP-350plus", "usb", 0x1504, 0x0006),
    # A4 printers, through CUPS (the queue decides the model; the kiosk never talks USB to them).
    SupportedModel("a4_printer", "HP", "LaserJet (hplip or IPP Everywhere)", "cups", "cups", 0x03F0, None,
                   cups_uri="hp"),
    SupportedModel("a4_printer", "Brother", "HL / MFC laser (IPP Everywhere)", "cups", "cups", 0x04F9, None,
                   cups_uri="brother"),
    SupportedModel("a4_printer", "Any", "IPP Everywhere printer", "cups", "cups", cups_uri="ipp"),
    SupportedModel("a4_printer", "cups-pdf", "CUPS-PDF virtual printer (test benches only)", "cups", "cups",
                   cups_uri="cups-pdf:"),
    # QR code and MRZ scanners in USB serial (CDC-ACM) mode: a /dev/ttyACM port, driver "serial".
    _usb("scanner", "Honeywell (Metrologic)", "Xenon / Voyager / HF scanners (USB serial mode)", "serial", 0x0C2E,
         None, "reached through its /dev/ttyACM port", "cdc-serial"),
    _usb("scanner", "Newland", "embedded QR scan engines (USB serial mode)", "serial", 0x1EAB, None,
         "reached through its /dev/ttyACM port", "cdc-serial"),
    _usb("scanner", "Symbol / Zebra", "bar code scanners (USB CDC mode)", "serial", 0x05E0, None,
         "reached through its /dev/ttyACM port", "cdc-serial"),
    # The same scanners in their factory USB keyboard (HID) mode: their keystrokes would land in
    # the touch UI, so the kiosk does not use them that way.
    _usb("scanner", "Symbol / Zebra", "bar code scanners (HID keyboard mode)", "hid", 0x05E0, None,
         HID_NOTE),
    _usb("scanner", "Honeywell (Metrologic)", "Xenon / Voyager scanners (HID keyboard mode)", "hid", 0x0C2E, None,
         HID_NOTE),
    _usb("scanner", "Newland", "embedded QR scan engines (HID keyboard mode)", "hid", 0x1EAB, None, HID_NOTE),
)


@dataclass(frozen=True)
class Finding:
    """What one found device was recognised as (``model`` None: not in the table)."""

    bus: str
    address: str
    description: str
    model: SupportedModel | None = None
    usb_id: str = ""  # the USB id behind a serial port, when the port is a USB bridge

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `kiosk-provision detect --json`."""
        out: dict[str, Any] = {"bus": self.bus, "address": self.address, "description": self.description,
                               "usb_id": self.usb_id, "model": None}
        if self.model is not None:
            out["model"] = {"device": self.model.device, "maker": self.model.maker, "model": self.model.model,
                            "driver": self.model.driver}
        return out


def _parse_usb_id(text: str) -> tuple[int, int] | None:
    try:
        vid, pid = text.split(":")
        return int(vid, 16), int(pid, 16)
    except ValueError:
        return None


def match_usb(usb_id: str, connection: str | None = None) -> SupportedModel | None:
    """The table row for a "vvvv:pppp" id: an exact product first, then a whole-vendor row.

    ``connection`` None looks at the rows of devices used over USB itself (not through a tty).
    """
    ids = _parse_usb_id(usb_id)
    if ids is None:
        return None
    vid, pid = ids
    rows = [m for m in SUPPORTED_MODELS if m.vendor_id == vid and (
        m.connection == connection if connection is not None else m.connection not in SERIAL_CONNECTIONS)]
    exact = [m for m in rows if m.product_id == pid]
    if exact:
        return exact[0]
    return next((m for m in rows if m.product_id is None), None)


def match_pcsc(reader_name: str) -> SupportedModel | None:
    """The table row for a PC/SC reader name."""
    return next((m for m in SUPPORTED_MODELS if m.pcsc_name and m.pcsc_name.lower() in reader_name.lower()), None)


def match_cups(uri: str) -> SupportedModel | None:
    """The table row for a CUPS device URI (``usb://HP/...``, ``ipp://...``, ``cups-pdf:/``)."""
    low = uri.lower()
    for m in SUPPORTED_MODELS:
        if m.connection != "cups" or not m.cups_uri:
            continue
        if m.cups_uri.endswith(":") and low.startswith(m.cups_uri):
            return m
        if low.startswith(("usb://", "ipp://", "ipps://", "dnssd://", "socket://")) and m.cups_uri in low:
            return m
    return None


def recognise(bus: str, address: str, description: str, usb_id: str = "") -> Finding:
    """Match one found device against the table."""
    model: SupportedModel | None = None
    if bus == "usb":
        # A bridge or a CDC device is recognised through its serial port, which names the tty.
        model = match_usb(address)
    elif bus == "serial" and usb_id:
        model = match_usb(usb_id, connection="serial-bridge") or match_usb(usb_id, connection="cdc-serial")
    elif bus == "pcsc":
        model = match_pcsc(address)
    elif bus == "cups":
        model = match_cups(description)
    return Finding(bus, address, description, model, usb_id)


@dataclass(frozen=True)
class Suggestion:
    """The [devices] tables to write, and a note per device for the technician."""

    devices: Mapping[str, Mapping[str, Any]]
    notes: Mapping[str, str] = field(default_factory=dict)


def _hex(n: int) -> str:
    return f"0x{n:04x}"


CSCA_TRUST_STORE = "/etc/kiosk/csca"  # the CSCA certificates (master list) passport and permit chips chain to


def _table_for(f: Finding) -> dict[str, Any] | None:
    m = f.model
    assert m is not None
    if m.connection == "usb":
        ids = _parse_usb_id(f.address)
        if ids is None:
            return None
        return {"driver": m.driver, "options": {"vendor_id": _hex(ids[0]), "product_id": _hex(ids[1])}}
    if m.connection == "serial-bridge":
        return {"driver": "serial", "options": {"port": f.address, "baud": 115200}}
    if m.connection == "cdc-serial":
        return {"driver": "serial", "options": {"port": f.address}}
    if m.connection == "pcsc":
        # Production refuses a chip reader without a CSCA trust store; this is where the technician puts it.
        return {"driver": "pcsc", "options": {"reader": f.address, "trust_store": CSCA_TRUST_STORE}}
    if m.connection == "cups" and f.bus == "cups":  # a USB A4 printer is used through its CUPS queue
        return {"driver": "cups", "options": {"queue": f.address}}
    return None


# Preference when several devices could serve one slot: a native USB SAM before a serial bridge.
_CONNECTION_RANK = {"usb": 0, "pcsc": 0, "cups": 0, "cdc-serial": 0, "serial-bridge": 1, "hid": 2}


def suggest_devices(findings: Iterable[Finding], drivers: Mapping[str, Mapping[str, str]] | None = None
                    ) -> Suggestion:
    """The [devices] section for what was found; a device not found (or without a driver) is disabled."""
    if drivers is None:
        from kiosk.hardware.factory import DRIVERS

        drivers = DRIVERS
    candidates: dict[str, list[Finding]] = {}
    for f in findings:
        if f.model is not None:
            candidates.setdefault(f.model.device, []).append(f)
    devices: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    for name in DEVICE_NAMES:
        found = sorted(candidates.get(name, []), key=lambda f: _CONNECTION_RANK.get(f.model.connection, 9))  # type: ignore[union-attr]
        table = None
        for f in found:
            assert f.model is not None
            if f.model.driver not in drivers.get(name, {}):
                notes[name] = f"{f.model.maker} {f.model.model} found at {f.address}, but no " \
                              f"{f.model.driver!r} driver is registered for {name}" + \
                              (f": {f.model.notes}" if f.model.notes else "")
                continue
            table = _table_for(f)
            if table is not None:
                notes[name] = f"{f.model.maker} {f.model.model} at {f.address}"
                if name == "pcsc":
                    notes[name] += f"; put the CSCA certificates chips are checked against in {CSCA_TRUST_STORE}"
                break
        if table is None:
            devices[name] = {"enabled": False}
            notes.setdefault(name, "not found")
        else:
            devices[name] = table
    return Suggestion(devices, notes)


def models_for(device: str) -> Sequence[SupportedModel]:
    """The table rows serving one config device."""
    return tuple(m for m in SUPPORTED_MODELS if m.device == device)
