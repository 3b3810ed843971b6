"""The health gate: after the switch the new release's kiosk must say READY, then report itself serving, in time.

Within ``update.gate_s`` the new kiosk must send ``READY=1`` and then write a run status
(``<state>/run-status.json``, kiosk/services/update_status.py) that names the new version,
comes from the new process and says it serves. One restart is allowed in that time (a
kiosk may stumble once at boot); a second exit fails the gate. The gate never opens a
device itself: it only watches.

Two ways to watch:

- :class:`SystemdGate` on a terminal: ``systemctl restart --no-block kiosk.service`` (the
  unit runs ``/opt/police-kiosk/current/bin/kiosk``), READY is systemd's view of the
  Type=notify unit (active/running), restarts are new main PIDs.
- :class:`TrialRunGate` with ``--root`` or without systemd: the gate starts the new
  release's ``kiosk run --headless`` itself, with a ``NOTIFY_SOCKET`` it owns (only
  datagrams from that child count), and stops it when it has its answer; the child dies
  with the gate (PR_SET_PDEATHSIG) if the gate is killed.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from kiosk.services.update_status import read_run_status
from provisioning.update.layout import ReleaseLayout
from provisioning.update.release_env import selftest_env

log = logging.getLogger("provisioning.update")

KIOSK_UNIT = "kiosk.service"
STOP_TIMEOUT_S = 30.0
POLL_S = 0.25
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class GateResult:
    """What the gate saw: passed, or why not (kiosk_exited, not_ready, not_healthy)."""

    ok: bool
    reason: str | None = None
    detail: str = ""
    seconds: float = 0.0
    ready_s: float | None = None
    restarts: int = 0


class Gate(Protocol):
    """Restarts the kiosk on the release ``current`` names and watches it."""

    def watch(self, version: str, on_started: Callable[[int], None] | None = None) -> GateResult:
        """(Re)start the kiosk and wait for READY and a healthy status from ``version``."""

    def restart(self) -> None:
        """(Re)start the kiosk service, not waiting (after a rollback)."""


def _healthy(state_dir: Path, version: str, since: float, pid: int | None) -> bool:
    status = read_run_status(state_dir)
    if status is None or status.get("version") != version or not status.get("serving"):
        return False
    if pid is not None and status.get("pid") != pid:
        return False
    at = status.get("at")
    return isinstance(at, (int, float)) and at >= since


def _die_with_parent(parent: int) -> None:  # runs in the child between fork and exec
    """Ask for SIGTERM when the parent dies; when it died already (killed between the fork and here, so no signal
    will ever come), end at once: an orphaned trial kiosk would run on unwatched."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


class TrialRunGate:
    """Runs the new release's ``kiosk run --headless`` itself and watches it (``--root``, or no systemd)."""

    def __init__(self, layout: ReleaseLayout, state_dir: Path, work_dir: Path, gate_s: float,
                 config_path: str | None = None) -> None:
        self.layout = layout
        self.state_dir = state_dir  # the kiosk's state folder (run-status.json)
        self.work_dir = work_dir  # the updater's folder (gate.log, Kivy's home)
        self.gate_s = gate_s
        self.config_path = config_path

    def restart(self) -> None:
        """Nothing runs as a service here: the gate's kiosk is a trial run, stopped once judged."""

    def _start(self, notify_name: str) -> subprocess.Popen[bytes]:
        cmd = [str(self.layout.current / "bin" / "kiosk")]
        if self.config_path:
            cmd += ["--config", self.config_path]
        cmd += ["run", "--headless"]
        env = selftest_env()
        env.update(NOTIFY_SOCKET=f"@{notify_name}", KIVY_HOME=str(self.work_dir / "kivy"))
        for name in ("WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.work_dir / "gate.log", "ab") as logf:
            logf.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            logf.flush()
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                    cwd=str(self.work_dir), start_new_session=True,
                                    preexec_fn=functools.partial(_die_with_parent, os.getpid()))

    def _log_tail(self, lines: int = 8) -> str:
        try:
            text = (self.work_dir / "gate.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def watch(self, version: str, on_started: Callable[[int], None] | None = None) -> GateResult:
        """Start the trial kiosk, wait for READY then a healthy status; stop it either way."""
        name = f"police-kiosk-gate-{os.getpid()}-{secrets.token_hex(4)}"
        began = time.monotonic()
        deadline = began + self.gate_s
        restarts = 0
        ready_s: float | None = None
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.bind("\0" + name)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            since = time.time()
            proc = self._start(name)
            if on_started:
                on_started(proc.pid)
            try:
                while True:
                    if ready_s is None and _ready_from(sock, proc.pid):
                        ready_s = time.monotonic() - began
                        log.info("gate: %s ready after %.1f s", version, ready_s)
                    if ready_s is not None and _healthy(self.state_dir, version, since, proc.pid):
                        return GateResult(True, None, "", time.monotonic() - began, ready_s, restarts)
                    if proc.poll() is not None:
                        if restarts >= 1:
                            return GateResult(False, "kiosk_exited",
                                              f"the kiosk of {version} exited with status {proc.returncode} twice "
                                              f"within the gate:\n{self._log_tail()}",
                                              time.monotonic() - began, ready_s, restarts)
                        log.warning("gate: %s exited with %s; restarting it once", version, proc.returncode)
                        stop_process_group(proc)  # whatever the first one left behind
                        restarts, ready_s, since = restarts + 1, None, time.time()
                        proc = self._start(name)
                        if on_started:
                            on_started(proc.pid)
                    if time.monotonic() >= deadline:
                        reason = "not_ready" if ready_s is None else "not_healthy"
                        what = "never said READY" if ready_s is None else "said READY but never reported serving"
                        return GateResult(False, reason, f"the kiosk of {version} {what} within {self.gate_s:g} s",
                                          time.monotonic() - began, ready_s, restarts)
            finally:
                stop_process_group(proc)


def _ready_from(sock: socket.socket, pid: int) -> bool:
    """Drain the notify socket (waiting at most one poll for the first datagram); True when ``pid`` sent READY=1."""
    ready, timeout = False, POLL_S
    while True:
        sock.settimeout(timeout)
        try:
            data, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except (socket.timeout, BlockingIOError):
            return ready
        sender = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                sender = struct.unpack("3i", payload[:struct.calcsize("3i")])[0]
        if sender == pid and b"READY=1" in data.split(b"\n"):
            ready = True
        timeout = 0.0  # whatever else is queued, without waiting


def stop_process_group(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the child's process group (the kiosk stops cleanly), SIGKILL what is left after ``timeout_s``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything the kiosk started and left behind
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def stop_leftover(pid: int | None, release_base: Path) -> bool:
    """Stop a trial kiosk a killed gate left (only if its command line runs a release under ``release_base``)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not any(str(release_base).encode() in part for part in cmdline) or b"--headless" not in cmdline:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return True
        for _ in range(int(STOP_TIMEOUT_S / POLL_S)):
            if not Path(f"/proc/{pid}").exists():
                return True
            time.sleep(POLL_S)
    return True


class SystemdGate:
    """Restarts ``kiosk.service`` through systemd and watches the unit and the kiosk's run status."""

    def __init__(self, state_dir: Path, gate_s: float, unit: str = KIOSK_UNIT) -> None:
        self.state_dir = state_dir
        self.gate_s = gate_s
        self.unit = unit
        self.systemctl = shutil.which("systemctl") or "/bin/systemctl"

    def _show(self) -> dict[str, str]:
        proc = subprocess.run([self.systemctl, "show", self.unit, "-p", "ActiveState", "-p", "SubState",
                               "-p", "MainPID", "-p", "NRestarts"], capture_output=True, text=True, timeout=30)
        return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)

    def restart(self) -> None:
        """``systemctl restart --no-block kiosk.service``."""
        subprocess.run([self.systemctl, "restart", "--no-block", self.unit], capture_output=True, timeout=60)

    def watch(self, version: str, on_started: Callable[[int], None] | None = None) -> GateResult:
        """Restart the unit; READY = active/running (Type=notify); a second new main PID is a second restart."""
        began, since = time.monotonic(), time.time()
        old_pid = self._show().get("MainPID", "0")
        self.restart()
        pids: list[str] = []
        ready_s: float | None = None
        while True:
            st = self._show()
            pid = st.get("MainPID", "0")
            if pid not in ("0", old_pid) and pid not in pids:
                pids.append(pid)
                if on_started:
                    on_started(int(pid))
            restarts = max(0, len(pids) - 1)
            if st.get("ActiveState") == "failed" or restarts > 1:
                return GateResult(False, "kiosk_exited", f"{self.unit} of {version} failed "
                                  f"({st.get('ActiveState')}/{st.get('SubState')}, {restarts} restarts)",
                                  time.monotonic() - began, ready_s, restarts)
            if ready_s is None and pids and st.get("ActiveState") == "active" and st.get("SubState") == "running":
                ready_s = time.monotonic() - began
            if ready_s is not None and _healthy(self.state_dir, version, since, None):
                return GateResult(True, None, "", time.monotonic() - began, ready_s, restarts)
            if time.monotonic() >= began + self.gate_s:
                reason = "not_ready" if ready_s is None else "not_healthy"
                return GateResult(False, reason, f"{self.unit} of {version}: {reason} within {self.gate_s:g} s",
                                  time.monotonic() - began, ready_s, restarts)
            time.sleep(POLL_S * 2)


def systemd_running() -> bool:
    """True when systemd is the service manager here (sd_booted)."""
    return Path("/run/systemd/system").is_dir()
