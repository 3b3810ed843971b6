"""PC/SC chip reader (pyscard) for passports and travel permits: ICAO 9303 BAC + secure messaging.

Card monitoring is our own polling over the raw SCard API rather than pyscard's monitor
thread, which dies silently when pcscd restarts: every poll that meets a "service gone"
status drops the context and establishes a new one, so the reader list and card presence
recover once pcscd is back. A card pulled mid-read becomes CardRemoved; pcscd going away
mid-read becomes DeviceOffline.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from smartcard import scard

from kiosk.errors import BacFailed, CardRemoved, DeviceOffline, DeviceProtocolError, NoCard, NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.icao import bac, lds, pa
from kiosk.hardware.icao.mrz import Mrz, yymmdd_to_iso
from kiosk.hardware.icao.sm import SecureChannel
from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.pcsc import ChipReader, chip_evidence

log = logging.getLogger(__name__)


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


_SERVICE_GONE = {_code(c) for c in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED,
                                    scard.SCARD_E_INVALID_HANDLE, scard.SCARD_F_COMM_ERROR)}
_CARD_GONE = {_code(c) for c in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD,
                                 scard.SCARD_W_RESET_CARD, scard.SCARD_E_READER_UNAVAILABLE,
                                 scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_W_UNRESPONSIVE_CARD,
                                 scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_E_UNKNOWN_READER)}
_NO_READERS = _code(scard.SCARD_E_NO_READERS_AVAILABLE)


@dataclass(frozen=True)
class ReaderInfo:
    """One PC/SC reader and what is in it."""

    name: str
    card_present: bool
    atr: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `kiosk hw readers --json`."""
        return {"name": self.name, "card_present": self.card_present, "atr": self.atr}


class PcscContext:
    """An SCard context that re-establishes itself after pcscd restarts."""

    def __init__(self, device: str = "") -> None:
        self.device = device
        self._ctx: Any = None

    def handle(self) -> Any:
        """The live context handle. Raises DeviceOffline when pcscd is not running."""
        if self._ctx is None:
            hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                raise DeviceOffline(f"pcscd not reachable: {scard.SCardGetErrorMessage(hresult)}",
                                    device=self.device)
            self._ctx = ctx
        return self._ctx

    def release(self) -> None:
        """Drop the context (after pcscd went away, or at close)."""
        if self._ctx is not None:
            try:
                scard.SCardReleaseContext(self._ctx)
            except Exception:  # the daemon is already gone
                pass
            self._ctx = None

    def _with_retry(self, call: Callable[[Any], tuple]) -> tuple:
        for attempt in (1, 2):
            result = call(self.handle())
            if _code(result[0]) in _SERVICE_GONE:
                self.release()  # pcscd restarted: a fresh context finds the new daemon
                if attempt == 2:
                    raise DeviceOffline("pcscd went away", device=self.device)
                continue
            return result
        raise AssertionError("unreachable")

    def readers(self) -> list[str]:
        """Reader names now. Raises DeviceOffline."""
        hresult, names = self._with_retry(lambda ctx: scard.SCardListReaders(ctx, []))
        if _code(hresult) == _NO_READERS:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise DeviceOffline(f"listing readers failed: {scard.SCardGetErrorMessage(hresult)}",
                                device=self.device)
        return list(names)

    def states(self, names: list[str]) -> list[ReaderInfo]:
        """Presence and ATR for each reader, without waiting. Raises DeviceOffline."""
        if not names:
            return []
        hresult, states = self._with_retry(lambda ctx: scard.SCardGetStatusChange(
            ctx, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names]))
        if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
            if _code(hresult) in _CARD_GONE:
                return [ReaderInfo(n, False) for n in names]
            raise DeviceOffline(f"reader status failed: {scard.SCardGetErrorMessage(hresult)}",
                                device=self.device)
        return [ReaderInfo(name, bool(event & scard.SCARD_STATE_PRESENT) and not
                           bool(event & scard.SCARD_STATE_MUTE), bytes(atr).hex().upper())
                for name, event, atr in states]


def list_readers() -> list[ReaderInfo]:
    """Every PC/SC reader and whether a card is in it. Raises DeviceOffline (no pcscd)."""
    ctx = PcscContext("pcsc")
    try:
        return ctx.states(ctx.readers())
    finally:
        ctx.release()


@dataclass(frozen=True, repr=False)
class ChipDocument:
    """What a chip read yields: the DG1 MRZ, the face, and passive authentication."""

    mrz: Mrz
    data_groups: tuple[int, ...]
    face: lds.FaceImage | None
    passive_authentication: pa.PassiveAuthResult
    apdu_count: int = 0
    apdu_seconds: tuple[float, ...] = field(default=())

    def __repr__(self) -> str:
        return f"ChipDocument({self.mrz.document_code}, {self.mrz.issuing_state}, DG{list(self.data_groups)})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `kiosk hw passport read --json` prints."""
        m = self.mrz
        return {
            "document_code": m.document_code, "issuing_state": m.issuing_state,
            "surname": m.surname, "given_names": m.given_names,
            "document_number": m.document_number, "nationality": m.nationality,
            "birth_date": yymmdd_to_iso(m.birth_date), "sex": m.sex,
            "expiry_date": yymmdd_to_iso(m.expiry_date, future=True),
            "data_groups": list(self.data_groups),
            "passive_authentication": self.passive_authentication.to_dict(),
        }

    def identity(self) -> IdentityCard:
        """The document as the identity record the workflow takes."""
        m, pa_result = self.mrz, self.passive_authentication
        return IdentityCard(
            "passport" if m.document_code.startswith("P") else "permit",
            f"{m.given_names} {m.surname}".strip(), m.document_number, m.sex,
            birth_date=yymmdd_to_iso(m.birth_date), issuer=m.issuing_state,
            valid_to=yymmdd_to_iso(m.expiry_date, future=True),
            photo=self.face.image if self.face else b"",
            extra={"nationality": m.nationality, "document_code": m.document_code,
                   "photo_format": self.face.format if self.face else "", **chip_evidence(m, pa_result)})


class PcscChipReader(ChipReader):
    """ICAO 9303 chip reader through pcscd.

    Options: ``reader`` (substring of the reader name; first reader if empty),
    ``trust_store`` (CSCA certificate file or folder; without it chain_valid is null),
    ``poll_interval`` s (0.1), ``chunk`` (READ BINARY size, 0xDF).
    """

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        self.options = dict(options or {})
        self.reader_filter = str(self.options.get("reader", "") or "")
        self.poll_interval = float(self.options.get("poll_interval", 0.1))
        self.chunk = int(self.options.get("chunk", 0xDF))
        self._ctx = PcscContext(name)
        self._trust: list | None = None
        self.apdu_log: list[tuple[bytes, float]] = []  # (INS bytes, seconds) of the last read

    # -- readers and presence ---------------------------------------------------------
    def close(self) -> None:
        """Release the PC/SC context; safe to call twice."""
        self._ctx.release()

    def _readers(self) -> list[str]:
        return [n for n in self._ctx.readers() if self.reader_filter.lower() in n.lower()]

    def status(self) -> DeviceStatus:
        """ONLINE when a matching reader is attached; never raises."""
        try:
            names = self._readers()
            present = any(info.card_present for info in self._ctx.states(names))
        except DeviceOffline as err:
            return status(DeviceState.OFFLINE, detail=err.detail)
        if not names:
            return status(DeviceState.NO_DEVICE, detail="no matching PC/SC reader")
        return status(DeviceState.ONLINE, conditions={"card_present"} if present else set())

    def card_present(self) -> bool:
        """True while a card is on a matching reader. Raises DeviceOffline."""
        return any(info.card_present for info in self._ctx.states(self._readers()))

    def document_present(self) -> bool:
        """Same as card_present (the name the chip reader simulator uses). Raises DeviceOffline."""
        return self.card_present()

    def wait_for_card(self, timeout: float) -> str:
        """Poll until a card is on a matching reader; its name. Raises NoDevice, NoCard, DeviceOffline."""
        deadline = time.monotonic() + timeout
        seen_reader, offline = False, None
        while True:
            try:
                names = self._readers()
                offline = None
                seen_reader = seen_reader or bool(names)
                for info in self._ctx.states(names):
                    if info.card_present:  # several readers match: take the one holding a card
                        return info.name
            except DeviceOffline as err:  # pcscd restarting: keep polling until the deadline
                offline = err
            if time.monotonic() >= deadline:
                if offline is not None:
                    raise offline
                if not seen_reader:
                    raise NoDevice("no matching PC/SC reader", device=self.name)
                raise NoCard("no chip on the reader", device=self.name)
            time.sleep(self.poll_interval)

    def wait_for_removal(self, timeout: float = 30.0) -> bool:
        """Poll until the card has left; False if still there at ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not self.card_present():
                    return True
            except DeviceOffline:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_interval)

    # -- reading ----------------------------------------------------------------------
    def trust_store(self) -> list | None:
        """The CSCA certificates configured (loaded once), or None."""
        path = self.options.get("trust_store")
        if path and self._trust is None:
            self._trust = pa.load_trust_store(path)
        return self._trust

    def read_document(self, document_number: str, birth_date: str, expiry_date: str,
                      timeout: float = 15.0) -> IdentityCard:
        """Read the chip with BAC keys from the MRZ fields (dates YYMMDD).

        Raises NoCard, CardRemoved, DeviceProtocolError, BacFailed (code bac_failed), DeviceOffline.
        """
        return self.read_chip(document_number, birth_date, expiry_date, timeout).identity()

    def read_chip(self, document_number: str, birth_date: str, expiry_date: str,
                  timeout: float = 15.0) -> ChipDocument:
        """BAC, then EF.COM, DG1, DG2 and EF.SOD under secure messaging, then passive authentication.

        Raises FieldError (malformed MRZ data), NoDevice, NoCard, CardRemoved, BacFailed,
        DeviceProtocolError, DeviceOffline.
        """
        keys = bac.derive_bac_keys(document_number, birth_date, expiry_date)
        trust = self.trust_store()
        reader = self.wait_for_card(timeout)
        self.apdu_log = []
        card, protocol = self._connect(reader)
        try:
            transmit = lambda apdu: self._transmit(card, protocol, apdu)  # noqa: E731
            _, sw = transmit(bytes.fromhex("00A4040C07") + lds.LDS1_AID)
            if sw != 0x9000:
                raise DeviceProtocolError(f"no eMRTD application (SW {sw:04X})", device=self.name)
            channel = SecureChannel(bac.mutual_authenticate(transmit, keys, device=self.name))
            files: dict[str, bytes | None] = {}
            files["EF.COM"] = self._read_file(transmit, channel, lds.EF_COM)
            com = lds.parse_ef_com(files["EF.COM"] or b"")
            for label, fid in (("DG1", lds.DG1), ("DG2", lds.DG2), ("EF.SOD", lds.EF_SOD)):
                if label.startswith("DG") and int(label[2:]) not in com.data_groups:
                    continue
                files[label] = self._read_file(transmit, channel, fid, optional=True)
        finally:
            self._disconnect(card)
        if not files.get("DG1"):
            raise DeviceProtocolError("chip has no DG1", device=self.name)
        mrz = lds.parse_dg1(files["DG1"])
        face = lds.parse_dg2(files["DG2"]) if files.get("DG2") else None
        groups = {int(k[2:]): v for k, v in files.items() if k.startswith("DG") and v}
        result = pa.verify(files.get("EF.SOD"), groups, trust)
        log.info("chip read: %s %s, %d APDUs, hashes_valid=%s chain_valid=%s", mrz.document_code,
                 mrz.issuing_state, len(self.apdu_log), result.hashes_valid, result.chain_valid)
        return ChipDocument(mrz, com.data_groups, face, result, len(self.apdu_log),
                            tuple(t for _, t in self.apdu_log))

    def _connect(self, reader: str) -> tuple[Any, int]:
        hresult, card, protocol = self._ctx._with_retry(lambda ctx: scard.SCardConnect(
            ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1))
        if hresult != scard.SCARD_S_SUCCESS:
            if _code(hresult) in _CARD_GONE:
                raise CardRemoved("card left before it could be opened", device=self.name)
            raise DeviceProtocolError(f"connect failed: {scard.SCardGetErrorMessage(hresult)}",
                                      device=self.name)
        return card, protocol

    def _disconnect(self, card: Any) -> None:
        try:
            scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)  # ends the SM session on the chip
        except Exception:  # card or daemon already gone
            pass

    def _transmit(self, card: Any, protocol: int, apdu: bytes) -> tuple[bytes, int]:
        started = time.perf_counter()
        hresult, response = scard.SCardTransmit(card, protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            code = _code(hresult)
            if code in _CARD_GONE:
                raise CardRemoved("card left the reader during the read", device=self.name)
            if code in _SERVICE_GONE:
                self._ctx.release()
                raise DeviceOffline("pcscd went away during the read", device=self.name)
            raise DeviceProtocolError(f"transmit failed: {scard.SCardGetErrorMessage(hresult)}",
                                      device=self.name)
        response = bytes(response)
        if not response:  # the reader got nothing back: the chip left the field mid-command
            raise CardRemoved("card stopped answering during the read", device=self.name)
        if len(response) < 2:
            raise DeviceProtocolError("answer shorter than its status word", device=self.name)
        sw = int.from_bytes(response[-2:], "big")
        if response[-2] == 0x61:  # T=0: fetch the rest with GET RESPONSE
            more, sw = self._transmit(card, protocol, bytes([0x00, 0xC0, 0x00, 0x00, response[-1]]))
            response = response[:-2] + more + sw.to_bytes(2, "big")
        self.apdu_log.append((apdu[:2], time.perf_counter() - started))
        return response[:-2], sw

    def _read_file(self, transmit: Callable[[bytes], tuple[bytes, int]], channel: SecureChannel,
                   fid: int, optional: bool = False) -> bytes | None:
        def secure(apdu: bytes) -> tuple[bytes, int]:
            raw, sw = transmit(channel.protect(apdu))
            try:
                return channel.unprotect(raw + sw.to_bytes(2, "big"))
            except DeviceProtocolError as err:
                err.device = self.name
                raise

        _, sw = secure(bytes.fromhex("00A4020C02") + fid.to_bytes(2, "big"))
        if sw == 0x6A82 and optional:
            return None
        if sw == 0x6982:
            raise BacFailed(f"chip refused access to file {fid:04X} (SW {sw:04X})", device=self.name)
        if sw != 0x9000:
            raise DeviceProtocolError(f"SELECT {fid:04X} failed (SW {sw:04X})", device=self.name)
        head, sw = secure(bytes.fromhex("00B0000004"))
        if sw != 0x9000 or len(head) < 2:
            raise DeviceProtocolError(f"READ BINARY {fid:04X} failed (SW {sw:04X})", device=self.name)
        total = lds.total_length(head)
        if total > 0x7FFF:
            raise DeviceProtocolError(f"file {fid:04X} claims {total} bytes", device=self.name)
        data = bytearray(head[:total])
        while len(data) < total:
            want = min(self.chunk, total - len(data))
            offset = len(data)
            part, sw = secure(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, want]))
            if sw != 0x9000 or not part:
                raise DeviceProtocolError(f"READ BINARY {fid:04X} at {offset} failed (SW {sw:04X})",
                                          device=self.name)
            data += part
        return bytes(data[:total])
