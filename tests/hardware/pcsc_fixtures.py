"""Real pcscd with the vsmartcard vpcd driver, and the project's virtual chip plugged into it.

pcscd runs as a plain foreground process (`pcscd -f -c <our reader.conf.d>`), started and
stopped by PID. vpcd listens on two ports (one per slot, N and N+1); we pick a free pair so
the test never depends on the system's reader.conf.d.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kiosk.errors import DeviceOffline
from kiosk.hardware.pcsc_reader import list_readers
from kiosk.hardware.simulators.vicc import DEMO_DOCUMENTS, TestPki, VirtualChip, VpcdChip

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"


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


class Pcscd:
    """One pcscd process serving a vpcd reader on ``port``."""

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
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["pcscd", "-f", "-c", str(self.confdir)],
                                         stdout=log, stderr=subprocess.STDOUT)
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

    def restart(self) -> None:
        """Stop and start again (the readers vanish and come back)."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def pcscd():
    """A pcscd for the whole session, with the vpcd reader on a free port pair."""
    if shutil.which("pcscd") is None or not os.path.exists(VPCD_DRIVER):
        raise RuntimeError("pcscd and vsmartcard-vpcd must be installed (make deps-test)")
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-pcscd-"))
    daemon = Pcscd(workdir)
    daemon.start()
    yield daemon
    daemon.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pki():
    """One test CSCA and document signer for the session."""
    return TestPki()


@pytest.fixture(scope="session")
def trust_store(pki, tmp_path_factory):
    """A trust store folder holding the test CSCA."""
    folder = tmp_path_factory.mktemp("csca")
    (folder / "csca.pem").write_bytes(pki.csca_pem())
    return folder


def wait_card(present: bool, timeout: float = 10.0) -> None:
    """Wait until pcscd reports the card in (or out of) the first vpcd slot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(r.card_present == present for r in list_readers() if r.name.endswith("00 00")):
                return
        except DeviceOffline:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"card presence never became {present}")


@pytest.fixture
def chip(pcscd, pki):
    """The specimen passport's chip placed on the vpcd reader."""
    runner = VpcdChip(VirtualChip(DEMO_DOCUMENTS[0], pki), pcscd.port).start()
    wait_card(True)
    yield runner
    runner.stop()
    wait_card(False)
