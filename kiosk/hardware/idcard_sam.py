"""GA 467 SAM ID card reader driver over USB-serial (pyserial) or raw USB (pyusb).

The transport moves bytes; ``SamIdCardReader`` speaks the frames (kiosk.hardware.ga467),
polls for the card and parses what it says. A card that has been read must leave the
field (seen absent on ``debounce`` polls in a row) before the next read accepts a card,
so a card left lying on the reader is never read again for the next resident.
"""
from __future__ import annotations

import abc
import logging
import time
from typing import Any, Mapping

from kiosk.errors import (CardReadFailed, CardRemoved, ConfigError, DeviceError, DeviceOffline, DeviceOverrun,
                          DeviceProtocolError, DeviceTimeout, NoCard, NoDevice, SamError)
from kiosk.hardware import ga467
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.idcard import IdCardReader, IdentityCard

log = logging.getLogger(__name__)

# The longest real answer is one frame (ga467.MAX_LENGTH plus its header); twice that without
# a whole frame, or input that does not pause within DISCARD_LIMIT_S, is a SAM out of control.
MAX_UNFRAMED_BYTES = 2 * (ga467.MAX_LENGTH + 8)
DISCARD_LIMIT_S = 0.5


class SamTransport(abc.ABC):
    """A byte pipe to the SAM."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send bytes. Raises DeviceOffline."""

    @abc.abstractmethod
    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` s; b"" when none came. Raises DeviceOffline."""

    def discard_input(self) -> None:
        """Drop bytes already received (resync after a bad frame).

        Raises DeviceOverrun when the SAM is still talking after MAX_UNFRAMED_BYTES or
        DISCARD_LIMIT_S, DeviceOffline.
        """
        deadline = time.monotonic() + DISCARD_LIMIT_S
        dropped = 0
        while True:
            got = self.read(4096, 0.02)
            if not got:
                return
            dropped += len(got)
            if dropped > MAX_UNFRAMED_BYTES or time.monotonic() >= deadline:
                raise DeviceOverrun(f"SAM sent {dropped} bytes without pause; link cut off")

    @abc.abstractmethod
    def close(self) -> None:
        """Release the port."""


class SerialTransport(SamTransport):
    """USB-serial (or a pseudo-terminal) through pyserial."""

    def __init__(self, port: str, baud: int = 115200, device: str = "") -> None:
        import serial

        self._device = device
        try:
            self._serial = serial.Serial(port, baud, timeout=0.1, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise NoDevice(f"cannot open {port}: {exc}", device=device) from None

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError) as exc:
            raise DeviceOffline(f"serial write failed: {exc}", device=self._device) from None

    def read(self, size: int, timeout: float) -> bytes:
        import serial

        try:
            self._serial.timeout = max(timeout, 0.0)
            first = self._serial.read(1)
            if not first:
                return b""
            waiting = min(self._serial.in_waiting, size - 1)
            return first + (self._serial.read(waiting) if waiting > 0 else b"")
        except (serial.SerialException, OSError) as exc:
            raise DeviceOffline(f"serial read failed: {exc}", device=self._device) from None

    def discard_input(self) -> None:
        try:
            self._serial.reset_input_buffer()
        except Exception:  # a vanished port shows up on the next read
            pass
        super().discard_input()

    def close(self) -> None:
        try:
            self._serial.close()
        except Exception:
            pass


class UsbTransport(SamTransport):
    """Raw USB through pyusb: the first interface's bulk (or interrupt) IN and OUT endpoints."""

    def __init__(self, vendor_id: int, product_id: int, backend: Any = None, device: str = "") -> None:
        import usb.core
        import usb.util

        self._device = device
        try:
            dev = usb.core.find(idVendor=vendor_id, idProduct=product_id, backend=backend)
        except (usb.core.NoBackendError, usb.core.USBError) as exc:
            raise NoDevice(f"USB lookup failed: {exc}", device=device) from None
        if dev is None:
            raise NoDevice(f"no USB device {vendor_id:04x}:{product_id:04x}", device=device)
        try:
            try:
                if dev.is_kernel_driver_active(0):
                    dev.detach_kernel_driver(0)
            except (NotImplementedError, usb.core.USBError):
                pass
            dev.set_configuration()
            intf = dev.get_active_configuration()[(0, 0)]
            out_ep = usb.util.find_descriptor(intf, custom_match=lambda e: usb.util.endpoint_direction(
                e.bEndpointAddress) == usb.util.ENDPOINT_OUT)
            in_ep = usb.util.find_descriptor(intf, custom_match=lambda e: usb.util.endpoint_direction(
                e.bEndpointAddress) == usb.util.ENDPOINT_IN)
        except usb.core.USBError as exc:
            raise DeviceOffline(f"USB set-up failed: {exc}", device=device) from None
        if out_ep is None or in_ep is None:
            raise NoDevice("USB device has no IN/OUT endpoint pair", device=device)
        self._dev, self._out, self._in = dev, out_ep, in_ep

    def write(self, data: bytes) -> None:
        import usb.core

        try:
            self._out.write(data, 1000)
        except usb.core.USBError as exc:
            raise DeviceOffline(f"USB write failed: {exc}", device=self._device) from None

    def read(self, size: int, timeout: float) -> bytes:
        import usb.core

        packet = int(self._in.wMaxPacketSize) or 64
        want = max(packet, (size + packet - 1) // packet * packet)
        try:
            return bytes(self._in.read(want, max(1, int(timeout * 1000))))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            if getattr(exc, "errno", None) == 110:  # some backends report a timeout this way
                return b""
            raise DeviceOffline(f"USB read failed: {exc}", device=self._device) from None

    def close(self) -> None:
        import usb.util

        try:
            usb.util.dispose_resources(self._dev)
        except Exception:
            pass


def _load_callable(spec: str, device: str) -> Any:
    """"module:function" → the function (a licensed WLT decoder). Raises ConfigError."""
    import importlib

    module, _, func = spec.partition(":")
    try:
        target = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"photo decoder {spec!r} cannot be imported",
                          key=f"devices.{device}.options.photo_decoder", value=spec) from None
    if not callable(target):
        raise ConfigError(f"photo decoder {spec!r} is not callable", key=f"devices.{device}.options.photo_decoder")
    return target


def _int_option(options: Mapping[str, Any], key: str) -> int:
    value = options[key]
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number (hex string allowed)", key=key, value=value) from None


class SamIdCardReader(IdCardReader):
    """ID card reader speaking GA 467 to a SAM module.

    Options: ``driver`` (serial or usb; inferred when absent), ``port`` and ``baud``
    (serial) or ``vendor_id`` and ``product_id`` (USB; a pyusb ``backend`` object may be
    given); ``poll_interval`` s (0.1), ``debounce`` polls (2), ``command_timeout`` s (1.0),
    ``appended_address`` (False: also read 30 03), ``require_removal`` (True: a card read
    must leave the field before the next read accepts one), ``photo_decoder``
    ("module:function" of a licensed WLT decoder, registered with ga467).
    """

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        self.options = dict(options or {})
        driver = self.options.get("driver") or ("serial" if "port" in self.options else "usb")
        if driver not in ("serial", "usb"):
            raise ConfigError(f"ID card reader driver {driver!r} is neither serial nor usb",
                              key=f"devices.{name}.driver", value=driver)
        needed = ("port",) if driver == "serial" else ("vendor_id", "product_id")
        if any(k not in self.options for k in needed):
            raise ConfigError(f"ID card reader over {driver} needs options {', '.join(needed)}",
                              key=f"devices.{name}.options")
        self.transport_kind = driver
        self.require_removal = bool(self.options.get("require_removal", True))
        if self.options.get("photo_decoder"):
            ga467.register_photo_decoder(_load_callable(str(self.options["photo_decoder"]), name))
        self.poll_interval = float(self.options.get("poll_interval", 0.1))
        self.debounce = max(1, int(self.options.get("debounce", 2)))
        self.command_timeout = float(self.options.get("command_timeout", 1.0))
        self._transport: SamTransport | None = None
        self._decoder = ga467.FrameDecoder()
        self._must_leave = False  # the last card read has not been seen leaving yet
        self.frames_sent = 0

    # -- connection -------------------------------------------------------------------
    def open(self) -> None:
        """Open the port and check the SAM answers. Raises NoDevice, DeviceOffline, SamError."""
        with self._lock:
            if self._transport is not None:
                return
            if self.transport_kind == "serial":
                self._transport = SerialTransport(str(self.options["port"]),
                                                  int(self.options.get("baud", 115200)), self.name)
            else:
                self._transport = UsbTransport(_int_option(self.options, "vendor_id"),
                                               _int_option(self.options, "product_id"),
                                               self.options.get("backend"), self.name)
            try:
                self._transport.discard_input()
                self.transact(ga467.Command.SAM_STATUS)
            except DeviceError as err:
                self.close()
                err.device = err.device or self.name
                raise

    def close(self) -> None:
        """Release the port; safe to call twice."""
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def status(self) -> DeviceStatus:
        """SAM status now; never raises."""
        try:
            with self._lock:
                self.open()
                self.transact(ga467.Command.SAM_STATUS)
            return status(DeviceState.ONLINE)
        except NoDevice as err:
            return status(DeviceState.NO_DEVICE, detail=err.detail)
        except DeviceOverrun as err:
            self.close()
            return status(DeviceState.HARDWARE_ERROR, {}, {"error"}, detail=err.detail)
        except (SamError, DeviceProtocolError) as err:
            return status(DeviceState.HARDWARE_ERROR, detail=err.detail)
        except DeviceError as err:
            self.close()
            return status(DeviceState.OFFLINE, detail=err.detail)

    # -- frames -----------------------------------------------------------------------
    def transact(self, command: ga467.Command, data: bytes = b"",
                 timeout: float | None = None) -> ga467.Response:
        """Send one command and return the SAM's answer, success or not.

        Raises DeviceTimeout (no answer), DeviceProtocolError (bad or truncated frame),
        DeviceOverrun (bytes past any frame's size: the port is closed), DeviceOffline.
        """
        with self._lock:
            if self._transport is None:
                raise DeviceOffline("reader not open", device=self.name)
            transport = self._transport
            self._decoder = ga467.FrameDecoder()
            transport.write(ga467.encode_command(command, data))
            self.frames_sent += 1
            deadline = time.monotonic() + (timeout or self.command_timeout)
            received = 0
            try:
                while True:
                    try:
                        body = self._decoder.next_body()
                    except DeviceProtocolError as err:
                        err.device = self.name
                        transport.discard_input()
                        raise
                    if body is not None:
                        return ga467.parse_response(body)
                    if received > MAX_UNFRAMED_BYTES:
                        raise DeviceOverrun(f"SAM sent {received} bytes without a whole frame; link cut off")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        if self._decoder.pending:
                            transport.discard_input()
                            raise DeviceProtocolError("truncated GA 467 frame", device=self.name)
                        raise DeviceTimeout("SAM did not answer", device=self.name)
                    chunk = transport.read(max(self._decoder.needed(), 1), min(left, 0.2))
                    received += len(chunk)
                    self._decoder.feed(chunk)
            except DeviceOverrun as err:
                # Drop the port: the next use opens it afresh, and open() meets a flood still going on.
                err.device = self.name
                log.warning("ID card reader %s: %s", self.name, err.detail)
                self.close()
                raise

    def command(self, command: ga467.Command, data: bytes = b"") -> ga467.Response:
        """Send one command; raise the typed error of a failure status."""
        timeout = self.command_timeout * (3 if command in (ga467.Command.READ_BASE_INFO,
                                                           ga467.Command.READ_BASE_INFO_FINGERPRINT) else 1)
        return ga467.check(self.transact(command, data, timeout), self.name)

    def sam_id(self) -> bytes:
        """The SAM's serial number (16 bytes). Raises DeviceError."""
        return self.command(ga467.Command.SAM_ID).data

    # -- the card ---------------------------------------------------------------------
    def card_present(self) -> bool:
        """One find-card poll: True when a card answers. Raises DeviceOffline, DeviceError."""
        with self._lock:
            self.open()
            response = self.transact(ga467.Command.FIND_CARD)
            if response.sw3 == ga467.SW3_CARD_FOUND:
                return True
            if response.sw3 == 0x80:
                return False
            raise ga467.status_error(response.sw3, self.name)

    def _settled(self, present: bool, deadline: float) -> bool:
        """Poll until the card is seen ``present`` (or absent) ``debounce`` times in a row."""
        streak = 0
        while True:
            seen = self.card_present()
            streak = streak + 1 if seen == present else 0
            if streak >= self.debounce:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_interval)

    def wait_for_removal(self, timeout: float = 30.0) -> bool:
        """Wait until the card has left the field; False if it is still there at ``timeout``."""
        if self._settled(False, time.monotonic() + timeout):
            self._must_leave = False
            return True
        return False

    def read_card(self, timeout: float = 10.0) -> IdentityCard:
        """Wait up to ``timeout`` s for a newly placed card and read it.

        Raises NoCard, CardRemoved, DeviceProtocolError, DeviceOverrun, DeviceTimeout, DeviceOffline, SamError.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self.open()
            if self._must_leave:
                if not self._settled(False, deadline):
                    raise NoCard("the last card read has not left the reader", device=self.name)
                self._must_leave = False
            if not self._settled(True, deadline):
                raise NoCard("no card placed in time", device=self.name)
            try:
                self.command(ga467.Command.SELECT_CARD)
                base = ga467.split_base_info(self.command(ga467.Command.READ_BASE_INFO).data)
                card = ga467.parse_text_block(base.text, base.photo)
                if self.options.get("appended_address"):
                    card = self._with_appended_address(card)
            except DeviceOverrun:
                raise  # not a card problem: the SAM itself is babbling
            except (NoCard, CardReadFailed, DeviceTimeout, DeviceProtocolError) as err:
                if not self._still_there():
                    raise CardRemoved(f"card left the field during the read ({err.code})",
                                      device=self.name) from None
                raise
            self._must_leave = self.require_removal
            log.info("ID card read: type %s", card.card_type)
            return card

    def _still_there(self) -> bool:
        try:
            return self.card_present()
        except DeviceError:
            return False

    def _with_appended_address(self, card: IdentityCard) -> IdentityCard:
        from dataclasses import replace

        response = self.transact(ga467.Command.READ_APPENDED_ADDRESS)
        if response.sw3 == 0x91:
            return card
        address = ga467.parse_appended_address(ga467.check(response, self.name).data)
        return replace(card, extra={**card.extra, "appended_address": address})
