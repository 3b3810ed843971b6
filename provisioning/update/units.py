"""The systemd units of fleet updates that `kiosk-provision install` stages beside kiosk.service.

- ``kiosk-update.service``: one ``kiosk-provision update apply`` run (Type=oneshot, as root:
  it writes ``/opt/police-kiosk``). A deferred run exits 0, so systemd counts it a success.
- ``kiosk-update.timer``: every ``update.check_interval_h`` after the last run, at the start of
  the maintenance window (station time), and a few minutes after boot (which also finishes a
  switch a power cut interrupted), each with a random delay so a fleet does not hit the
  repository at the same second.
- ``kiosk-update.path``: starts the service when the kiosk writes ``update-now.json`` (a
  verified ``update_now`` remote command).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.services.update_status import UPDATE_NOW_FILE, parse_window

SERVICE = "kiosk-update.service"
TIMER = "kiosk-update.timer"
PATH = "kiosk-update.path"
BOOT_DELAY = "5min"
MAX_RANDOM_DELAY_MIN = 30


def _minutes(hours: float) -> int:
    return max(1, round(hours * 60))


def random_delay_min(check_interval_h: float, window: str) -> int:
    """The timer's RandomizedDelaySec in minutes: at most 30, a quarter of the period, half the window."""
    start, end = parse_window(window)
    window_min = (end - start) % (24 * 60) or 24 * 60
    return max(1, min(MAX_RANDOM_DELAY_MIN, _minutes(check_interval_h) // 4, window_min // 2))


def service_unit(cfg: Any, provision_bin: str, config_dest: str, state_dir: str) -> str:
    """The text of kiosk-update.service."""
    return f"""\
# Written by kiosk-provision install. One fleet update run: fetch and verify a signed release,
# build and self-test it, switch when no resident is at the kiosk and the maintenance window
# ({cfg.update.window} station time) is open, restart kiosk.service and hold it to the health
# gate ({cfg.update.gate_s:g} s), or switch back. Started by {TIMER} and {PATH}.
[Unit]
Description=Police kiosk fleet update ({cfg.terminal.id})
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={provision_bin} update apply --config {config_dest}
Environment=KIOSK_CONFIG={config_dest}
TimeoutStartSec=3600
Nice=10
IOSchedulingClass=idle
UMask=0022
NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes
ProtectSystem=strict
ReadWritePaths=-/opt/police-kiosk {state_dir}
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
"""


def timer_unit(cfg: Any) -> str:
    """The text of kiosk-update.timer."""
    start, _end = parse_window(cfg.update.window)
    period = _minutes(cfg.update.check_interval_h)
    delay = random_delay_min(cfg.update.check_interval_h, cfg.update.window)
    return f"""\
# Written by kiosk-provision install: look for a release every {cfg.update.check_interval_h:g} h
# (update.check_interval_h), at the start of the maintenance window, and soon after boot.
[Unit]
Description=Police kiosk: look for a fleet update

[Timer]
OnBootSec={BOOT_DELAY}
OnUnitActiveSec={period}min
OnCalendar=*-*-* {start // 60:02d}:{start % 60:02d}:00 {cfg.terminal.timezone}
RandomizedDelaySec={delay}min
Persistent=true
Unit={SERVICE}

[Install]
WantedBy=timers.target
"""


def path_unit(state_dir: str) -> str:
    """The text of kiosk-update.path."""
    return f"""\
# Written by kiosk-provision install: an update_now remote command (kept by the kiosk in
# {UPDATE_NOW_FILE}) starts an update run at once; it lifts the maintenance window only.
[Unit]
Description=Police kiosk: update now when the operator asks

[Path]
PathChanged={state_dir}/{UPDATE_NOW_FILE}
Unit={SERVICE}

[Install]
WantedBy=paths.target
"""


def staged_files(cfg: Any, kiosk_bin: str, config_dest: str, state_dir: str) -> dict[str, str]:
    """{relative path: text} of the three units; the updater is the ``kiosk-provision`` beside ``kiosk_bin``."""
    provision_bin = str(Path(kiosk_bin).parent / "kiosk-provision")
    return {f"etc/systemd/system/{SERVICE}": service_unit(cfg, provision_bin, config_dest, state_dir),
            f"etc/systemd/system/{TIMER}": timer_unit(cfg),
            f"etc/systemd/system/{PATH}": path_unit(state_dir)}


def staged_links() -> dict[str, str]:
    """The enablement links of the timer and the path unit."""
    return {f"etc/systemd/system/timers.target.wants/{TIMER}": f"/etc/systemd/system/{TIMER}",
            f"etc/systemd/system/paths.target.wants/{PATH}": f"/etc/systemd/system/{PATH}"}
