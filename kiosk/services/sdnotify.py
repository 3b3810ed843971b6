"""systemd's notify protocol without a dependency: READY=1, WATCHDOG=1 and STATUS= to $NOTIFY_SOCKET.

The service manager hands a Type=notify unit the path of a unix datagram socket in
``NOTIFY_SOCKET`` (an ``@`` prefix means the abstract namespace) and, with WatchdogSec,
the interval in ``WATCHDOG_USEC``. Outside systemd the variable is absent and every call
here is a cheap no-op returning False, so the app calls it unconditionally. The app should
send WATCHDOG=1 from its UI loop's clock (every ``watchdog_interval() / 2``) so a stalled
UI stops the pings and systemd restarts the kiosk.
"""
from __future__ import annotations

import os
import socket
from typing import Mapping


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":  # vsock addresses and garbage are not for us
        return None
    return "\0" + path[1:] if path[0] == "@" else path


def notify(*fields: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``KEY=value`` lines in one datagram; True when a service manager took it, False when none listens."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    for f in fields:
        if "=" not in f or "\n" in f:
            raise ValueError(f"notify field must be one KEY=value line, got {f!r}")
    message = "\n".join(fields).encode("utf-8")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message, address)
        except OSError:  # the manager went away (restart in progress): nothing to tell
            return False
    return True


def ready(status: str = "", env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd start-up is done (READY=1), optionally with a status line."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []), env=env)


def watchdog(env: Mapping[str, str] | None = None) -> bool:
    """Ping the watchdog (WATCHDOG=1)."""
    return notify("WATCHDOG=1", env=env)


def status(text: str, env: Mapping[str, str] | None = None) -> bool:
    """Set the one-line status `systemctl status` shows (STATUS=...); newlines become spaces."""
    return notify(f"STATUS={' '.join(text.splitlines())}", env=env)


def stopping(env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the service is shutting down (STOPPING=1)."""
    return notify("STOPPING=1", env=env)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout in seconds when it is meant for this process, else None.

    WATCHDOG_PID names the unit's main process; under the cage session that is cage, the
    app's parent, which passes the variables on, so the parent's PID counts as ours.
    """
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid not in (str(os.getpid()), str(os.getppid())):
        return None
    return usec / 1_000_000 if usec > 0 else None
