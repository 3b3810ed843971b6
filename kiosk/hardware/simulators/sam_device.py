"""A virtual GA 467 SAM module with a card field, speaking real frames.

``VirtualSam`` is the device logic (bytes in, bytes out). Two connectors put it where a
driver expects hardware: ``PtySam`` on a pseudo-terminal (the pyserial path) and
``SamUsbBackend``, a pyusb backend object for ``usb.core.find(backend=...)`` with one
interface and two bulk endpoints. Faults (``inject``): ``no_card``, ``checksum_error``
(base-info answers carry a wrong checksum), ``truncated_frame`` (base-info answers stop
half way), ``card_pulled`` (the card leaves the field right after it is selected), ``flood``
(on a pseudo-terminal: bytes without pause and without a frame, as a SAM with broken firmware
or a wrong baud rate sends).
Cards default to the demo residents, encoded into real text blocks.
"""
from __future__ import annotations

import array
import hashlib
import os
import select
import threading
import time
import tty
from typing import Any, Iterable, Mapping

from usb.backend import IBackend

from kiosk.errors import DeviceProtocolError
from kiosk.hardware import ga467
from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.simulators.cards import DEMO_CARDS

FAULTS = ("no_card", "checksum_error", "truncated_frame", "card_pulled", "flood")
FLOOD_CHUNK = b"\xAA\x55" * 2048  # never holds a preamble, so no frame ever completes
SAM_ID = bytes.fromhex("0501000000000000" "0000000000000001")  # 16-byte SAM serial, made up


def fake_wlt(card: IdentityCard) -> bytes:
    """1024 opaque bytes shaped like a WLT photo header, stable per card (no real image)."""
    body = b""
    seed = card.id_number.encode()
    while len(body) < ga467.PHOTO_SIZE:
        seed = hashlib.sha256(seed).digest()
        body += seed
    return (b"WLf\x00\x7e\x00\x32\x00" + body)[:ga467.PHOTO_SIZE]


class VirtualSam:
    """The SAM and its antenna field: answers command frames, holds at most one card."""

    def __init__(self, cards: Iterable[IdentityCard] = DEMO_CARDS, *, present: bool = True,
                 faults: Mapping[str, Any] | None = None) -> None:
        self.cards = list(cards)
        self.index = 0
        self.present = present and bool(self.cards)
        self.selected = False
        self.faults: dict[str, Any] = {}
        for name, value in (faults or {}).items():
            self.inject(name, value)
        self.commands: list[bytes] = []  # CMD PARA of every command received, for tests
        self._decoder = ga467.FrameDecoder()
        self._lock = threading.Lock()

    # -- the scene --------------------------------------------------------------------
    def inject(self, fault: str, value: Any = True) -> None:
        """Switch a fault on (truthy) or off. Raises ValueError for an unknown fault."""
        if fault not in FAULTS:
            raise ValueError(f"unknown SAM fault {fault!r}")
        self.faults[fault] = value

    def place(self, card: IdentityCard | int | None = None) -> None:
        """Put a card in the field (a card object, an index into ``cards``, or the current one)."""
        with self._lock:
            if isinstance(card, IdentityCard):
                self.cards.append(card)
                self.index = len(self.cards) - 1
            elif isinstance(card, int):
                self.index = card
            self.present, self.selected = True, False

    def remove(self) -> None:
        """Take the card out of the field."""
        with self._lock:
            self.present = self.selected = False

    @property
    def card(self) -> IdentityCard:
        """The card currently placed (or last placed)."""
        return self.cards[self.index]

    # -- bytes ------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the host; return the bytes the SAM sends back."""
        out = b""
        with self._lock:
            self._decoder.feed(data)
            while True:
                try:
                    body = self._decoder.next_body()
                except DeviceProtocolError:
                    out += ga467.encode_response(0x10)
                    continue
                if body is None:
                    return out
                out += self._answer(body)

    def _in_field(self) -> bool:
        return self.present and not self.faults.get("no_card")

    def _answer(self, body: bytes) -> bytes:
        cmd = body[:2]
        self.commands.append(bytes(cmd))
        if len(cmd) < 2:
            return ga467.encode_response(0x11)
        if cmd == ga467.Command.RESET_SAM.value or cmd == ga467.Command.SAM_STATUS.value:
            return ga467.encode_response(ga467.SW3_OK)
        if cmd == ga467.Command.SAM_ID.value:
            return ga467.encode_response(ga467.SW3_OK, SAM_ID)
        if cmd == ga467.Command.FIND_CARD.value:
            if not self._in_field():
                return ga467.encode_response(0x80)
            return ga467.encode_response(ga467.SW3_CARD_FOUND, b"\x00\x00\x00\x00")
        if cmd == ga467.Command.SELECT_CARD.value:
            if not self._in_field():
                return ga467.encode_response(0x81)
            self.selected = True
            if self.faults.get("card_pulled"):
                self.present = False  # pulled away once the select has gone through
            return ga467.encode_response(ga467.SW3_OK, bytes(8))
        if cmd in (ga467.Command.READ_BASE_INFO.value, ga467.Command.READ_BASE_INFO_FINGERPRINT.value):
            if not (self.selected and self._in_field()):
                self.selected = False
                return ga467.encode_response(0x41)
            self.selected = False
            card = self.card
            text, photo = ga467.encode_text_block(card), card.photo or fake_wlt(card)
            if cmd == ga467.Command.READ_BASE_INFO.value:
                data = (len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text + photo)
            else:
                finger = bytes(ga467.FINGERPRINT_SIZE)
                data = (len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big")
                        + len(finger).to_bytes(2, "big") + text + photo + finger)
            frame = ga467.encode_response(ga467.SW3_OK, data)
            if self.faults.get("checksum_error"):
                frame = frame[:-1] + bytes([frame[-1] ^ 0x5A])
            if self.faults.get("truncated_frame"):
                frame = frame[:len(frame) // 2]
            return frame
        if cmd == ga467.Command.READ_APPENDED_ADDRESS.value:
            if not self._in_field():
                return ga467.encode_response(0x41)
            extra = self.card.extra.get("appended_address", "")
            if not extra:
                return ga467.encode_response(0x91)
            return ga467.encode_response(ga467.SW3_OK, extra.ljust(35).encode("utf-16-le"))
        return ga467.encode_response(0x21)


class PtySam:
    """The virtual SAM behind a pseudo-terminal: open ``.port`` with pyserial.

    ``baud`` (optional) paces the answers like a real UART (10 bits per byte), so benchmarks
    can compare against the wire time; by default answers go out at once.
    """

    def __init__(self, sam: VirtualSam | None = None, baud: int | None = None) -> None:
        self.sam = sam or VirtualSam()
        self.baud = baud
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="virtual-sam", daemon=True)

    def start(self) -> "PtySam":
        """Start answering in a background thread."""
        self._thread.start()
        return self

    def _run(self) -> None:
        os.set_blocking(self._master, False)  # a flood must not block on a host that stopped reading
        while not self._stop.is_set():
            flooding = bool(self.sam.faults.get("flood"))
            ready, writable, _ = select.select([self._master], [self._master] if flooding else [], [], 0.05)
            if writable:
                try:
                    os.write(self._master, FLOOD_CHUNK)
                except BlockingIOError:
                    pass
                except OSError:
                    return
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            answer = self.sam.receive(data)
            if answer:
                if self.baud:
                    time.sleep(len(answer) * 10 / self.baud)
                self._send(answer)

    def _send(self, answer: bytes) -> None:
        """Write a whole answer through the non-blocking master."""
        view = memoryview(answer)
        while view and not self._stop.is_set():
            try:
                view = view[os.write(self._master, view):]
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
            except OSError:
                return

    def stop(self) -> None:
        """Stop the thread and close both ends of the terminal."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "PtySam":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- pyusb backend ------------------------------------------------------------------------
class _Descriptor:
    """Attribute bag: pyusb reads descriptor fields as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


EP_OUT = 0x02
EP_IN = 0x81
PACKET = 64


class SamUsbBackend(IBackend):
    """A pyusb backend holding one virtual SAM reader: ``usb.core.find(backend=SamUsbBackend())``."""

    def __init__(self, sam: VirtualSam | None = None, vendor_id: int = 0x0400,
                 product_id: int = 0xC35A) -> None:
        self.sam = sam or VirtualSam()
        self.vendor_id, self.product_id = vendor_id, product_id
        self._pending = bytearray()
        self._cond = threading.Condition()
        self.configuration = 0
        self.claimed: set[int] = set()
        self.unplugged = False

    # enumeration and descriptors
    def enumerate_devices(self) -> Iterable[str]:
        """The one device (unless unplugged)."""
        return [] if self.unplugged else ["virtual-sam"]

    def get_parent(self, dev: str) -> None:
        return None

    def get_device_descriptor(self, dev: str) -> _Descriptor:
        return _Descriptor(bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0,
                           bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=64,
                           idVendor=self.vendor_id, idProduct=self.product_id, bcdDevice=0x0100,
                           iManufacturer=0, iProduct=0, iSerialNumber=0, bNumConfigurations=1,
                           address=7, bus=1, port_number=1, port_numbers=(1,), speed=2)

    def get_configuration_descriptor(self, dev: str, config: int) -> _Descriptor:
        return _Descriptor(bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1,
                           bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80,
                           bMaxPower=50, extra_descriptors=[])

    def get_interface_descriptor(self, dev: str, intf: int, alt: int, config: int) -> _Descriptor:
        if intf != 0 or alt != 0:
            raise IndexError("one interface only")
        return _Descriptor(bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
                           bNumEndpoints=2, bInterfaceClass=0xFF, bInterfaceSubClass=0,
                           bInterfaceProtocol=0, iInterface=0, extra_descriptors=[])

    def get_endpoint_descriptor(self, dev: str, ep: int, intf: int, alt: int, config: int) -> _Descriptor:
        if ep not in (0, 1):
            raise IndexError("two endpoints only")
        return _Descriptor(bLength=7, bDescriptorType=5, bEndpointAddress=(EP_IN, EP_OUT)[ep],
                           bmAttributes=0x02, wMaxPacketSize=PACKET, bInterval=0, bRefresh=0,
                           bSynchAddress=0, extra_descriptors=[])

    # handles and configuration
    def open_device(self, dev: str) -> str:
        import usb.core

        if self.unplugged:
            raise usb.core.USBError("No such device", 19, 19)
        return dev

    def close_device(self, handle: str) -> None:
        self.claimed.clear()

    def set_configuration(self, handle: str, value: int) -> None:
        self.configuration = value

    def get_configuration(self, handle: str) -> int:
        return self.configuration

    def set_interface_altsetting(self, handle: str, intf: int, alt: int) -> None:
        pass

    def claim_interface(self, handle: str, intf: int) -> None:
        self.claimed.add(intf)

    def release_interface(self, handle: str, intf: int) -> None:
        self.claimed.discard(intf)

    def is_kernel_driver_active(self, handle: str, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, handle: str, intf: int) -> None:
        pass

    def attach_kernel_driver(self, handle: str, intf: int) -> None:
        pass

    def clear_halt(self, handle: str, ep: int) -> None:
        pass

    def reset_device(self, handle: str) -> None:
        with self._cond:
            self._pending.clear()

    # transfers
    def bulk_write(self, handle: str, ep: int, intf: int, data: array.array, timeout: int) -> int:
        import usb.core

        if self.unplugged:
            raise usb.core.USBError("No such device", 19, 19)
        answer = self.sam.receive(bytes(data))
        with self._cond:
            self._pending += answer
            self._cond.notify_all()
        return len(data)

    def bulk_read(self, handle: str, ep: int, intf: int, buff: array.array, timeout: int) -> int:
        import usb.core

        with self._cond:
            if not self._pending:
                self._cond.wait((timeout or 1000) / 1000)
            if self.unplugged:
                raise usb.core.USBError("No such device", 19, 19)
            if not self._pending:
                raise usb.core.USBTimeoutError("Operation timed out", 110, 110)
            n = min(len(buff), len(self._pending))
            buff[:n] = array.array("B", self._pending[:n])
            del self._pending[:n]
            return n

    intr_write = bulk_write
    intr_read = bulk_read
