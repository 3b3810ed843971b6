"""A private cupsd for the printing tests: own ServerRoot, a unix socket, stopped by PID.

Import the fixtures into a test module (``from cups_fixtures import cupsd``). Queues:
``pdf_queue()`` prints through the cups-pdf backend (device URI ``cups-pdf:/NAME``, whose
config Debian's cups-pdf reads from ``/etc/cups/cups-pdf-NAME.conf``, written here and
removed at the end); ``fake_queue(scenario)`` uses a small test backend that reports
printer-state-reasons the way a real printer's backend does (paper out, door open, jam,
queue stopped, job aborted); ``raw_queue(uri)`` passes bytes through unchanged.

The folder lives directly under /tmp with mode 0755 because CUPS runs filters as the ``lp``
user, which cannot enter pytest's private tmp folders.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

CUPS_LIB = Path("/usr/lib/cups")
CUPS_PDF_PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")

# A CUPS backend: with no arguments it lists itself; otherwise DEVICE_URI names the scenario.
FAKE_BACKEND = """#!/bin/sh
if [ $# -eq 0 ]; then echo 'direct kioskfake "Unknown" "kiosk test backend"'; exit 0; fi
scenario="${DEVICE_URI#kioskfake:/}"
case "$scenario" in
  ok) cat ${6:-} > /dev/null; exit 0 ;;
  toner-low) echo "STATE: +toner-low-warning" >&2; cat ${6:-} > /dev/null; exit 0 ;;
  media-empty) echo "STATE: +media-empty-error" >&2; echo "INFO: Out of paper" >&2; sleep 30; exit 0 ;;
  door-open) echo "STATE: +door-open-error" >&2; sleep 30; exit 0 ;;
  media-jam) echo "STATE: +media-jam-error" >&2; sleep 30; exit 0 ;;
  stop) echo "STATE: +offline-report" >&2; echo "ERROR: printer not responding" >&2; exit 4 ;;
  abort) echo "ERROR: job rejected by the printer" >&2; exit 5 ;;
  slow) sleep 30; exit 0 ;;
  *) exit 1 ;;
esac
"""


@dataclass
class CupsServer:
    """A running private cupsd."""

    root: Path
    socket: Path
    proc: subprocess.Popen
    conf_files: list[Path] = field(default_factory=list)

    @property
    def server(self) -> str:
        """What pycups and the CUPS tools take as the server (the socket path)."""
        return str(self.socket)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Run a CUPS tool against this server (``-h`` socket); raises on failure."""
        return subprocess.run([args[0], "-h", self.server, *args[1:]], check=True, capture_output=True,
                              text=True, timeout=30)

    def _name(self, prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex[:8]}"

    def pdf_queue(self) -> tuple[str, Path]:
        """A cups-pdf queue with its own output folder; returns (queue, folder)."""
        name = self._name("kpdf")
        out = self.root / "pdf" / name
        out.mkdir(parents=True)
        conf = Path(f"/etc/cups/cups-pdf-{name}.conf")
        conf.write_text(f"Out {out}\nAnonDirName {out}\nSpool {self.root / 'cups-pdf-spool'}\n"
                        "UserUMask 0022\nTitlePref 1\n")
        self.conf_files.append(conf)
        self.run("lpadmin", "-p", name, "-E", "-v", f"cups-pdf:/{name}", "-P", str(CUPS_PDF_PPD))
        return name, out

    def fake_queue(self, scenario: str) -> str:
        """A queue whose backend acts out ``scenario`` (ok, media-empty, door-open, stop, abort...)."""
        name = self._name("kfake")
        self.run("lpadmin", "-p", name, "-E", "-v", f"kioskfake:/{scenario}", "-m", "raw",
                 "-o", "printer-error-policy=abort-job")
        return name

    def raw_queue(self, uri: str) -> str:
        """A raw queue (no filters) sending to ``uri``, e.g. socket://127.0.0.1:PORT."""
        name = self._name("kraw")
        self.run("lpadmin", "-p", name, "-E", "-v", uri, "-m", "raw")
        return name

    def stop(self) -> None:
        """Stop cupsd by its PID and remove what it left."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        for conf in self.conf_files:
            conf.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cupsd() -> CupsServer:
    """Start a private cupsd in a fresh folder and wait until its socket answers."""
    root = Path(tempfile.mkdtemp(prefix="kiosk-cupsd-", dir="/tmp"))
    root.chmod(0o755)
    for sub in ("etc", "spool", "cache", "state", "log", "cups-pdf-spool", "pdf"):
        (root / sub).mkdir()
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    (root / "pdf").chmod(0o755)
    # ServerBin: the system's filters and backends plus the fake backend
    lib = root / "lib"
    (lib / "backend").mkdir(parents=True)
    for sub in ("filter", "daemon", "cgi-bin", "monitor", "notifier"):
        if (CUPS_LIB / sub).exists():
            (lib / sub).symlink_to(CUPS_LIB / sub)
    for backend in (CUPS_LIB / "backend").iterdir():
        (lib / "backend" / backend.name).symlink_to(backend)
    fake = lib / "backend" / "kioskfake"
    fake.write_text(FAKE_BACKEND)
    fake.chmod(0o755)
    sock = root / "cups.sock"
    (root / "etc" / "cups-files.conf").write_text(
        f"ServerRoot {root / 'etc'}\nRequestRoot {root / 'spool'}\nTempDir {tmp}\nCacheDir {root / 'cache'}\n"
        f"StateDir {root / 'state'}\nErrorLog {root / 'log' / 'error_log'}\nAccessLog {root / 'log' / 'access_log'}\n"
        f"PageLog {root / 'log' / 'page_log'}\nServerBin {lib}\nDataDir /usr/share/cups\n"
        f"Printcap {root / 'printcap'}\nFileDevice Yes\nSystemGroup root\n")
    (root / "etc" / "cupsd.conf").write_text(
        f"Listen {sock}\nLogLevel debug\nWebInterface No\nBrowsing No\nDefaultAuthType None\n"
        "JobRetryInterval 1\nMaxJobTime 120\n"
        "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")
    log = (root / "log" / "stdout").open("wb")
    proc = subprocess.Popen(["/usr/sbin/cupsd", "-f", "-c", str(root / "etc" / "cupsd.conf"),
                             "-s", str(root / "etc" / "cups-files.conf")], stdout=log, stderr=subprocess.STDOUT)
    server = CupsServer(root, sock, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cupsd exited: {(root / 'log' / 'stdout').read_text()}")
        if sock.exists():
            try:
                subprocess.run(["lpstat", "-h", str(sock), "-r"], check=True, capture_output=True, timeout=5)
                return server
            except subprocess.CalledProcessError:
                pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("cupsd did not start within 20 s")


@pytest.fixture(scope="module")
def cupsd() -> Iterator[CupsServer]:
    """A private cupsd for the module's tests."""
    server = start_cupsd()
    try:
        yield server
    finally:
        server.stop()
