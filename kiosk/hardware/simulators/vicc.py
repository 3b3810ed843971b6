"""The project's virtual ICAO 9303 chip for vsmartcard's vpcd driver in pcscd.

vpcd listens on a TCP port (reader.conf CHANNELID); the chip connects to it as a client.
Each message is a 2-byte big-endian length and a payload; a 1-byte payload is a control
code (0 power off, 1 power on, 2 reset, 4 get ATR, which is the only one answered), any
other payload is a command APDU that gets its response APDU back. Connecting is placing the
card on the reader; closing the socket is pulling it off.

The chip serves EF.COM, DG1, DG2 and EF.SOD of a demo document behind BAC and 3DES secure
messaging. Its files are built by ``chip_files`` (shared with the demo profile's chip reader
simulator): EF.SOD is signed by a document signer issued by a test CSCA (``TestPki``), so
passive authentication can chain to a trust store.
Faults (``inject``): ``pull_after_reads`` (N: the card leaves after N READ BINARY),
``tamper_dg`` (N: DG N changes after the SOD was signed), ``refuse_auth`` (BAC always fails).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from kiosk.hardware.icao import lds
from kiosk.hardware.icao.bac import derive_bac_keys, session_keys
from kiosk.hardware.icao.crypto import pad, retail_mac, tdes_decrypt, tdes_encrypt
from kiosk.hardware.icao.sm import ChipChannel, SecureMessagingError, parse_apdu
from kiosk.hardware.simulators.chip_files import DemoDocument, TestPki, chip_files, face_jpeg

__all__ = ["ATR", "DEMO_DOCUMENTS", "DemoDocument", "FAULTS", "Pcscd", "TestPki", "VPCD_DRIVER", "VirtualChip",
           "VpcdChip", "face_jpeg", "free_port_pair"]

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
ATR = bytes.fromhex("3B80800101")  # T=1, no historical bytes; TCK = 80 ^ 80 ^ 01 ... ^ = 01
FAULTS = ("pull_after_reads", "tamper_dg", "refuse_auth")


# The ICAO 9303 specimen (its BAC keys are the spec's worked example) and an invented one.
DEMO_DOCUMENTS: tuple[DemoDocument, ...] = (
    DemoDocument("P", "UTO", "ERIKSSON", "ANNA MARIA", "L898902C", "UTO", "690806", "F", "940623",
                 "ZE184226B"),
    DemoDocument("P", "CHN", "ZHANG", "WEI", "EA1234567", "CHN", "900101", "M", "320101"),
)


class VirtualChip:
    """The chip's logic: APDU in, response APDU out."""

    def __init__(self, document: DemoDocument = DEMO_DOCUMENTS[0], pki: TestPki | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        self.document = document
        self.pki = pki or TestPki()
        self.faults: dict[str, Any] = {}
        for name, value in (faults or {}).items():
            self.inject(name, value)
        self.files: dict[int, bytes] = chip_files(document.mrz(), self.pki, document.number)
        self._keys = derive_bac_keys(document.number, document.birth_date, document.expiry_date)
        self.apdus: list[bytes] = []  # every command received, for tests
        self.reads = 0
        self.power_off()

    def inject(self, fault: str, value: Any = True) -> None:
        """Switch a fault on (truthy) or off. Raises ValueError for an unknown fault."""
        if fault not in FAULTS:
            raise ValueError(f"unknown chip fault {fault!r}")
        self.faults[fault] = value

    def power_off(self) -> None:
        """Forget the session: selected application, challenge, secure messaging."""
        self.app_selected = False
        self.selected_file: int | None = None
        self.challenge: bytes | None = None
        self.sm: ChipChannel | None = None

    def _file(self, fid: int) -> bytes:
        data = self.files[fid]
        tamper = self.faults.get("tamper_dg")
        if tamper and fid == {1: lds.DG1, 2: lds.DG2}.get(int(tamper)):
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        return data

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU."""
        self.apdus.append(bytes(apdu))
        try:
            cmd = parse_apdu(apdu)
        except SecureMessagingError:
            return b"\x67\x00"
        if cmd.cla & 0x0C == 0x0C:
            return self._protected(apdu)
        if cmd.ins == 0xA4 and cmd.p1 == 0x04:
            self.app_selected = cmd.data == lds.LDS1_AID
            self.sm = None
            return b"\x90\x00" if self.app_selected else b"\x6A\x82"
        if cmd.ins == 0x84:
            self.challenge = os.urandom(8)
            return self.challenge + b"\x90\x00"
        if cmd.ins == 0x82:
            return self._mutual_authenticate(cmd.data)
        return b"\x69\x82"  # everything else needs secure messaging first

    def _mutual_authenticate(self, data: bytes) -> bytes:
        challenge, self.challenge = self.challenge, None
        if not self.app_selected or challenge is None:
            return b"\x69\x85"
        if len(data) != 40 or self.faults.get("refuse_auth"):
            return b"\x63\x00"
        e_ifd, m_ifd = data[:32], data[32:]
        if retail_mac(self._keys.mac, pad(e_ifd)) != m_ifd:
            return b"\x63\x00"
        s = tdes_decrypt(self._keys.enc, e_ifd)
        rnd_ifd, rnd_ic, k_ifd = s[:8], s[8:16], s[16:32]
        if rnd_ic != challenge:
            return b"\x63\x00"
        k_ic = os.urandom(16)
        e_ic = tdes_encrypt(self._keys.enc, rnd_ic + rnd_ifd + k_ic)
        keys = session_keys(k_ifd, k_ic, rnd_ic, rnd_ifd)
        self.sm = ChipChannel(keys)
        return e_ic + retail_mac(self._keys.mac, pad(e_ic)) + b"\x90\x00"

    def _protected(self, apdu: bytes) -> bytes:
        if self.sm is None:
            return b"\x69\x82"
        try:
            cmd = self.sm.unprotect(apdu)
        except SecureMessagingError:
            self.sm = None  # a broken SM object ends the session (9303-11 §9.8.6)
            return b"\x69\x88"
        if cmd.ins == 0xA4 and cmd.p1 == 0x02:
            fid = int.from_bytes(cmd.data, "big") if len(cmd.data) == 2 else -1
            if fid not in self.files:
                return self.sm.protect(b"", 0x6A82)
            self.selected_file = fid
            return self.sm.protect(b"", 0x9000)
        if cmd.ins == 0xB0:
            if self.selected_file is None:
                return self.sm.protect(b"", 0x6986)
            self.reads += 1
            data = self._file(self.selected_file)
            offset = ((cmd.p1 & 0x7F) << 8) | cmd.p2
            if offset > len(data):
                return self.sm.protect(b"", 0x6B00)
            le = 256 if cmd.le in (0, None) else cmd.le
            return self.sm.protect(data[offset:offset + le], 0x9000)
        return self.sm.protect(b"", 0x6D00)


class VpcdChip:
    """Connects a VirtualChip to vpcd and keeps reconnecting (pcscd restarts) until stopped."""

    # vpcd misses a card that comes back while pcscd is still powering down the slot after
    # a pull mid-command; a person needs longer than this to put a card back anyway
    REINSERT_DELAY = 1.0

    def __init__(self, chip: VirtualChip | None = None, port: int = 35963, host: str = "127.0.0.1") -> None:
        self.chip = chip or VirtualChip()
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._inserted = threading.Event()
        self._inserted.set()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self._left_at = -1e9
        self._thread = threading.Thread(target=self._run, name="vicc", daemon=True)

    def start(self) -> "VpcdChip":
        """Start the connection thread (the card is placed as soon as vpcd accepts)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Pull the card and end the thread."""
        self._stop.set()
        self.remove()
        self._thread.join(3)

    def remove(self) -> None:
        """Take the card off the reader (closes the connection; vpcd reports no card)."""
        self._inserted.clear()
        self._drop()

    def insert(self) -> None:
        """Put the card back on the reader."""
        self._inserted.set()

    def _drop(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        self.connected.clear()
        if sock is not None:
            self._left_at = time.monotonic()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._inserted.wait(0.05):
                continue
            if time.monotonic() - self._left_at < self.REINSERT_DELAY:
                time.sleep(0.05)
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=0.5)
            except OSError:
                time.sleep(0.1)  # vpcd not listening yet (pcscd starting or restarting)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sock = sock
            self.chip.power_off()
            self.connected.set()
            try:
                self._serve(sock)
            except OSError:
                pass
            self._drop()

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            # vpcd writes the length and the APDU in two sends under Nagle: acknowledge at
            # once, or every APDU waits out the 40 ms delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("vpcd closed the connection")
            buf += chunk
        return buf

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            (length,) = struct.unpack(">H", self._recv(sock, 2))
            payload = self._recv(sock, length) if length else b""
            if length == 1:
                code = payload[0]
                if code in (0, 2):
                    self.chip.power_off()
                elif code == 4:
                    sock.sendall(struct.pack(">H", len(ATR)) + ATR)
                continue
            limit = self.chip.faults.get("pull_after_reads")
            if limit and self.chip.reads >= int(limit):
                # pulled off while the terminal waits for an answer; insert() puts it back
                self.chip.faults["pull_after_reads"] = 0
                self._inserted.clear()
                return
            answer = self.chip.process(payload)
            sock.sendall(struct.pack(">H", len(answer)) + answer)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def free_port_pair() -> int:
    """A port N with N and N+1 both free (vpcd opens one per slot)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and _port_free(port) and _port_free(port + 1):
            return port
    raise RuntimeError("no free port pair for vpcd")


def private_pcsc_socket() -> Path | None:
    """This process's own PC/SC socket path, exported as PCSCLITE_CSOCK_NAME for libpcsclite.

    pcscd 1.9.9 ignores that variable and always listens on /run/pcscd/pcscd.comm, so two
    test runs on one machine would take the socket from each other. ``Pcscd`` therefore runs
    pcscd in its own mount namespace with this folder bound over /run/pcscd, and the clients
    of this process (and its children) connect here. libpcsclite reads the variable once, at
    its first call, so call this before any PC/SC use; the path is fixed for the process.
    None (and the system socket) where no private mount namespace can be had.
    """
    name = os.environ.get("PCSCLITE_CSOCK_NAME")
    if name:
        return Path(name)
    if os.geteuid() != 0 or shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
        return None
    name = f"/tmp/kiosk-pcsc-{os.getpid()}/pcscd.comm"
    os.environ["PCSCLITE_CSOCK_NAME"] = name
    return Path(name)


class Pcscd:
    """One pcscd process (`pcscd -f -c <own reader.conf.d>`) serving a vpcd reader on ``port``.

    For tests and benchmarks. As root it gets a private socket (``private_pcsc_socket``), so
    parallel test runs do not meet; elsewhere it takes over the system's PC/SC socket.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port_pair()
        self.confdir = workdir / "reader.conf.d"
        self.confdir.mkdir()
        (self.confdir / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:{self.port}\n'
            f"LIBPATH      {VPCD_DRIVER}\nCHANNELID    {self.port}\n")
        self.log = workdir / "pcscd.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start pcscd and wait until it lists the virtual readers."""
        argv = ["pcscd", "-f", "-c", str(self.confdir)]
        sock = private_pcsc_socket()
        if sock is not None:
            run = sock.parent
            run.mkdir(mode=0o755, exist_ok=True)
            argv = ["unshare", "-m", "sh", "-c",
                    'mount --bind "$0" /run/pcscd && exec "$@"', str(run), *argv]
            os.makedirs("/run/pcscd", exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        from kiosk.errors import DeviceOffline
        from kiosk.hardware.pcsc_reader import list_readers

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if any(r.name.startswith("Virtual PCD") for r in list_readers()):
                    return
            except DeviceOffline:
                pass
            time.sleep(0.1)
        raise RuntimeError("pcscd did not list the vpcd readers")

    def stop(self) -> None:
        """Stop our pcscd by PID (SIGTERM so it removes its socket)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        sock = private_pcsc_socket()
        if sock is not None:
            with contextlib.suppress(OSError):  # pcscd removed its socket and pid file
                sock.parent.rmdir()

    def restart(self) -> None:
        """Stop and start again (the readers vanish and come back)."""
        self.stop()
        self.start()


def main(argv: list[str] | None = None) -> int:
    """Run the virtual chip against vpcd until interrupted (`python -m kiosk.hardware.simulators.vicc`)."""
    p = argparse.ArgumentParser(description="virtual ICAO chip for vpcd")
    p.add_argument("--port", type=int, default=35963)
    p.add_argument("--document", type=int, default=0, help="index into DEMO_DOCUMENTS")
    p.add_argument("--csca-out", help="write the test CSCA certificate (PEM) here")
    args = p.parse_args(argv)
    chip = VirtualChip(DEMO_DOCUMENTS[args.document])
    if args.csca_out:
        with open(args.csca_out, "wb") as f:
            f.write(chip.pki.csca_pem())
    runner = VpcdChip(chip, args.port).start()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        runner.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
