"""Real pcscd with the vsmartcard vpcd driver, and the project's virtual chip plugged into it.

pcscd runs as a plain foreground process (`pcscd -f -c <our reader.conf.d>`), started and
stopped by PID. vpcd listens on two ports (one per slot, N and N+1); we pick a free pair so
the test never depends on the system's reader.conf.d.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from kiosk.errors import DeviceOffline
from kiosk.hardware.pcsc_reader import list_readers
from kiosk.hardware.simulators.vicc import (DEMO_DOCUMENTS, VPCD_DRIVER, Pcscd, TestPki, VirtualChip,
                                            VpcdChip)


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
