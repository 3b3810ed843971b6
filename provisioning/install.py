"""`kiosk-provision install --root DIR`: the files that make a Debian machine a kiosk, staged into DIR.

DIR mirrors the target file system (``DIR/etc/systemd/system/kiosk.service`` goes to
``/etc/systemd/system/kiosk.service``), so a package build or an image builder copies it
over ``/``. What is staged:

- ``kiosk.service``: Type=notify with WatchdogSec (the app sends READY=1 and WATCHDOG=1,
  see kiosk.services.sdnotify), Restart=on-failure, run as the unprivileged ``kiosk`` user
  with sandboxing. It is also the locked-down session: it owns tty1 through PAM (the
  autologin), starts the cage Wayland kiosk compositor, and cage starts only the kiosk app;
  cage allows no VT switching and has no launcher, so there is no way to a desktop or shell.
- getty on tty1 masked, logind told to spawn no other VT logins.
- a sysusers.d entry creating the ``kiosk`` system user and its groups, and a tmpfiles.d
  entry giving that group read access to the config (ownership is set on the target).
- udev rules giving the ``kiosk`` group the configured USB devices, so no root is needed.
- the config itself at ``/etc/kiosk/kiosk.toml`` (mode 0640).
- fleet updates: ``kiosk-update.service``, ``kiosk-update.timer`` and ``kiosk-update.path``
  (provisioning/update/units.py), the timer and the path unit enabled.

Everything is written into a staging folder beside DIR, the units are checked with
``systemd-analyze verify``, and only then does the folder replace DIR; on any failure
nothing half-installed is left. DIR must be new, empty, or an earlier install's (it carries
``INSTALL_MARKER``): any other folder is refused, so a mistyped ``--root`` cannot wipe it.
``ExecStart`` runs the installed release (``CURRENT_KIOSK_BIN``), never a development checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from kiosk.config import KioskConfig
from kiosk.errors import ConfigError
from kiosk.services.heap import PYTHON_ALLOCATOR
from provisioning.atomic import staged_dir, write_atomic
from provisioning.errors import InstallVerifyFailed, ProvisionError
from provisioning.update.layout import CURRENT_KIOSK_BIN

SERVICE_NAME = "kiosk.service"
CONFIG_DEST = "/etc/kiosk/kiosk.toml"
STATE_DIR = "/var/lib/kiosk"
CAGE = "/usr/bin/cage"
INSTALL_MARKER = ".kiosk-provision-install"  # in DIR: this folder is an install's, it may be replaced
CONFIG_DIR = "/etc/kiosk"


@dataclass(frozen=True)
class InstallOptions:
    """What `install` needs beyond the config."""

    root: Path
    config_source: Path
    kiosk_bin: str = CURRENT_KIOSK_BIN
    user: str = "kiosk"
    watchdog_s: int = 30
    metrics_port: int | None = None
    verify: bool = True
    extra_groups: tuple[str, ...] = field(default=("video", "input", "render"))


@dataclass(frozen=True)
class UsbDevice:
    """A USB device the kiosk must be able to open: config name and vendor:product."""

    device: str
    vendor_id: int
    product_id: int


def _as_int(value: object, key: str) -> int:
    try:
        return int(value, 16) if isinstance(value, str) else int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: not a USB id: {value!r}", key=key, value=value) from None


def usb_devices(cfg: KioskConfig) -> list[UsbDevice]:
    """The USB devices the config names (vendor_id/product_id options or a ``usb:VVVV:PPPP`` printer spec)."""
    found: list[UsbDevice] = []
    for name, dev in cfg.devices.items():
        if not dev.enabled or dev.driver == "sim":
            continue
        opts = dev.options
        key = f"devices.{name}.options"
        if "vendor_id" in opts and "product_id" in opts:
            found.append(UsbDevice(name, _as_int(opts["vendor_id"], f"{key}.vendor_id"),
                                   _as_int(opts["product_id"], f"{key}.product_id")))
        elif isinstance(opts.get("printer"), str) and opts["printer"].startswith("usb:"):
            parts = opts["printer"].split(":")
            if len(parts) != 3:
                raise ConfigError(f"{key}.printer: expected usb:VVVV:PPPP", key=f"{key}.printer",
                                  value=opts["printer"])
            found.append(UsbDevice(name, int(parts[1], 16), int(parts[2], 16)))
    return found


def uses_serial(cfg: KioskConfig) -> bool:
    """True when a device is reached through a serial port (the kiosk then needs the dialout group)."""
    return any(dev.enabled and dev.driver == "serial" for dev in cfg.devices.values())


def device_groups(cfg: KioskConfig) -> list[str]:
    """Groups the configured devices need: dialout for serial ports, audio for a real speaker (ALSA devices)."""
    groups = ["dialout"] if uses_serial(cfg) else []
    speaker = cfg.devices.get("speaker")
    if speaker is not None and speaker.enabled and speaker.driver == "sdl":
        groups.append("audio")
    return groups


def udev_rules(cfg: KioskConfig, group: str = "kiosk") -> str:
    """udev rules giving ``group`` read/write access to each configured USB device."""
    lines = ["# Written by kiosk-provision install: the kiosk user opens these USB devices without root.",
             "# Re-run the install after changing devices in the config."]
    for d in usb_devices(cfg):
        lines.append(f"# {d.device}")
        lines.append(f'SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", ATTR{{idVendor}}=="{d.vendor_id:04x}", '
                     f'ATTR{{idProduct}}=="{d.product_id:04x}", GROUP="{group}", MODE="0660"')
    return "\n".join(lines) + "\n"


def _state_dir(cfg: KioskConfig) -> str:
    raw = cfg.paths.state_dir
    if raw.startswith("~"):
        return STATE_DIR + raw[1:] if raw != "~" else STATE_DIR  # HOME of the kiosk user is STATE_DIR
    return raw


def service_unit(cfg: KioskConfig, opts: InstallOptions) -> str:
    """The text of kiosk.service."""
    groups = list(opts.extra_groups) + device_groups(cfg)
    run = f"{opts.kiosk_bin} --config {CONFIG_DEST} run --metrics-port {metrics_port(cfg, opts)}"
    metrics = metrics_note(cfg, opts)
    state = _state_dir(cfg)
    extra_rw = "" if state == STATE_DIR or state.startswith(STATE_DIR + "/") else f"ReadWritePaths={state}\n"
    return f"""\
# Written by kiosk-provision install. The kiosk app is the only thing on this screen:
# this unit owns tty1 (PAM session = autologin of the kiosk user), runs the cage kiosk
# compositor, and cage runs the app; no VT switching, no launcher, no desktop.
[Unit]
Description=24-hour self-service police kiosk ({cfg.terminal.id})
After=systemd-user-sessions.service plymouth-quit-wait.service network-online.target pcscd.socket cups.service
After=getty@tty1.service
Wants=network-online.target dbus.socket systemd-logind.service
Conflicts=getty@tty1.service
ConditionPathExists=/dev/tty1
StartLimitIntervalSec=600
StartLimitBurst=10

[Service]
# {metrics}
Type=notify
# The app is cage's child, so its READY=1 and WATCHDOG=1 come from another PID.
NotifyAccess=all
ExecStart={CAGE} -- {run}
WatchdogSec={opts.watchdog_s}
TimeoutStartSec=180
Restart=on-failure
RestartSec=5
User={opts.user}
Group={opts.user}
SupplementaryGroups={' '.join(groups)}
PAMName=login
TTYPath=/dev/tty1
TTYReset=yes
TTYVHangup=yes
TTYVTDisallocate=yes
StandardInput=tty-fail
StandardOutput=journal
StandardError=journal
UtmpIdentifier=tty1
UtmpMode=user
Environment=KIOSK_CONFIG={CONFIG_DEST}
Environment=HOME={STATE_DIR}
# Python's objects from glibc's heap, which the home screen's trim gives back (kiosk.services.heap).
Environment=PYTHONMALLOC={PYTHON_ALLOCATOR}
StateDirectory=kiosk
StateDirectoryMode=0700
LogsDirectory=kiosk
{extra_rw}UMask=0077
# Sandboxing: the app needs the GPU, input, USB, serial and the network, nothing else.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=~@mount @reboot @swap @module @raw-io @obsolete @cpu-emulation @debug
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=graphical.target
"""


def metrics_port(cfg: KioskConfig, opts: InstallOptions) -> int:
    """The port the installed kiosk serves metrics on: ``--metrics-port``, else the config's ``[metrics] listen``."""
    return cfg.metrics.address(opts.metrics_port)[1]


def metrics_note(cfg: KioskConfig, opts: InstallOptions) -> str:
    """Where the installed kiosk serves metrics: the host is always the config's ``[metrics] listen``."""
    host, port = cfg.metrics.address(metrics_port(cfg, opts))
    shown = f"[{host}]" if ":" in host else host
    reach = "beyond loopback ([metrics] allow_remote)" if cfg.metrics.remote() else "loopback only"
    return f"Metrics: http://{shown}:{port}/metrics, {reach}; the host comes from [metrics] listen."


def sysusers(opts: InstallOptions, cfg: KioskConfig) -> str:
    """sysusers.d entry: the unprivileged kiosk user and its groups."""
    groups = list(opts.extra_groups) + device_groups(cfg)
    lines = ["# Written by kiosk-provision install.",
             f'u {opts.user} - "Police kiosk" {STATE_DIR} /usr/sbin/nologin']
    lines += [f"m {opts.user} {g}" for g in groups]
    return "\n".join(lines) + "\n"


LOGIND_DROPIN = """\
# Written by kiosk-provision install: no login prompts on other VTs, power key does nothing.
[Login]
NAutoVTs=0
ReserveVT=0
HandlePowerKey=ignore
HandleSuspendKey=ignore
HandleHibernateKey=ignore
"""


def _inside_config_dir(path: str) -> bool:
    """True for a path strictly below /etc/kiosk: the only folders whose mode the install may set."""
    return Path(path).is_absolute() and Path(CONFIG_DIR) in Path(path).parents


def tmpfiles(opts: InstallOptions, cfg: KioskConfig) -> str:
    """tmpfiles.d entries: the config (and the enrolled secret) readable by the kiosk group, nobody else.

    The staging machine may have no ``kiosk`` user, so ownership is set on the target at boot.
    A folder is named only when it lies inside /etc/kiosk (enroll's credentials/): a secret kept
    anywhere else gets a line for its file alone, never for the folder around it (/tmp, /etc, ...).
    """
    lines = ["# Written by kiosk-provision install.",
             f"d {CONFIG_DIR} 0750 root {opts.user} -",
             f"z {CONFIG_DEST} 0640 root {opts.user} -"]
    folders: list[str] = []
    files: list[tuple[str, str]] = []
    if cfg.backend.hmac_secret_file:
        files.append((cfg.backend.hmac_secret_file, "0440"))
    # What `kiosk-provision enroll` wrote beside the secret: the key is as private as the secret.
    for path, mode in ((cfg.backend.client_key_file, "0440"), (cfg.backend.client_cert_file, "0444"),
                       (cfg.backend.ca_file, "0444")):
        if path:
            files.append((path, mode))
    for path, _mode in files:
        folder = str(Path(path).parent)
        if _inside_config_dir(folder) and folder not in folders:  # the group must be able to enter it
            folders.append(folder)
    lines += [f"z {folder} 0750 root {opts.user} -" for folder in folders]
    lines += [f"z {path} {mode} root {opts.user} -" for path, mode in files]
    return "\n".join(lines) + "\n"


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    write_atomic(root / rel, text.encode("utf-8"), mode)  # fsynced before the staged tree is renamed in


def _link(root: Path, rel: str, target: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def stage(stage_root: Path, cfg: KioskConfig, opts: InstallOptions) -> list[str]:
    """Write every file into ``stage_root``; return the relative paths written."""
    files: dict[str, str] = {
        f"etc/systemd/system/{SERVICE_NAME}": service_unit(cfg, opts),
        "etc/systemd/logind.conf.d/50-kiosk.conf": LOGIND_DROPIN,
        "usr/lib/sysusers.d/kiosk.conf": sysusers(opts, cfg),
        "usr/lib/tmpfiles.d/kiosk.conf": tmpfiles(opts, cfg),
        "etc/udev/rules.d/70-police-kiosk.rules": udev_rules(cfg, opts.user),
    }
    from provisioning.update import units as update_units

    files.update(update_units.staged_files(cfg, opts.kiosk_bin, CONFIG_DEST, _state_dir(cfg)))
    for rel, text in files.items():
        _write(stage_root, rel, text)
    _write(stage_root, CONFIG_DEST.lstrip("/"), opts.config_source.read_text(encoding="utf-8"), 0o640)
    links = {
        "etc/systemd/system/getty@tty1.service": "/dev/null",  # masked: tty1 belongs to the kiosk
        f"etc/systemd/system/graphical.target.wants/{SERVICE_NAME}": f"/etc/systemd/system/{SERVICE_NAME}",
        "etc/systemd/system/default.target": "/lib/systemd/system/graphical.target",
    }
    links.update(update_units.staged_links())
    for rel, target in links.items():
        _link(stage_root, rel, target)
    written = sorted([*files, CONFIG_DEST.lstrip("/"), *links])
    _write(stage_root, INSTALL_MARKER, "".join(f"/{rel}\n" for rel in written))
    return written


def verify_units(unit_paths: list[Path]) -> str:
    """Run `systemd-analyze verify`; return its output. Raises InstallVerifyFailed on any error or warning."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        raise InstallVerifyFailed("systemd-analyze not found (apt-get install systemd), or pass --no-verify")
    proc = subprocess.run([tool, "verify", *map(str, unit_paths)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or output:  # verify prints nothing for a clean unit; a warning is a mistake too
        raise InstallVerifyFailed(f"systemd-analyze verify: {output or f'exit {proc.returncode}'}",
                                  output=output)
    return output


def check_root(root: Path) -> None:
    """DIR must be new, empty, or an earlier install's (it holds INSTALL_MARKER). Raises ProvisionError."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise ProvisionError(f"--root {root} is not a folder; give a new folder to stage into, e.g. /tmp/kiosk-root")
    if root.is_dir() and any(root.iterdir()) and not (root / INSTALL_MARKER).is_file():
        raise ProvisionError(f"--root {root} is not empty and was not made by kiosk-provision install; it would be "
                             "replaced whole, so it is left alone. Give a new or empty folder, e.g. /tmp/kiosk-root")


def development_checkout(path: str) -> Path | None:
    """The source checkout ``path`` lies in (a parent holding .git or setup.cfg), or None."""
    for parent in Path(path).parents:
        if (parent / ".git").exists() or (parent / "setup.cfg").is_file():
            return parent
    return None


def check_kiosk_bin(kiosk_bin: str) -> str:
    """ExecStart's app must be an installed release. Raises ProvisionError, InstallVerifyFailed; returns a note."""
    if not Path(kiosk_bin).is_absolute():
        raise ProvisionError(f"--kiosk-bin must be an absolute path, got {kiosk_bin!r}")
    checkout = development_checkout(kiosk_bin)
    if checkout is not None:
        raise ProvisionError(f"--kiosk-bin {kiosk_bin} is inside the development checkout {checkout}; the service "
                             f"must run an installed release: leave --kiosk-bin out ({CURRENT_KIOSK_BIN}, set up by "
                             "`kiosk-provision update apply`)")
    if Path(kiosk_bin).exists():
        if not os.access(kiosk_bin, os.X_OK) or not Path(kiosk_bin).is_file():
            raise InstallVerifyFailed(f"{kiosk_bin} is not an executable file (--kiosk-bin)")
        return ""
    if kiosk_bin == CURRENT_KIOSK_BIN:  # staged on another machine: the release comes with `update apply`
        return (f"ExecStart runs {CURRENT_KIOSK_BIN}, not present on this machine: install a release on the "
                "target (`kiosk-provision update apply`) before starting kiosk.service.")
    raise InstallVerifyFailed(f"{kiosk_bin} does not exist (--kiosk-bin); leave the flag out to run the installed "
                              f"release {CURRENT_KIOSK_BIN}")


def install(cfg: KioskConfig, opts: InstallOptions) -> tuple[list[str], str]:
    """Stage every file into ``opts.root`` all at once; returns (paths written, a note on the app).

    Raises ProvisionError, InstallVerifyFailed, ConfigError.
    """
    if not 5 <= opts.watchdog_s <= 600:
        raise ProvisionError(f"--watchdog-sec must be 5..600, got {opts.watchdog_s}")
    check_root(opts.root)
    note = check_kiosk_bin(opts.kiosk_bin)
    with staged_dir(opts.root) as stage_root:
        written = stage(stage_root, cfg, opts)
        if opts.verify:  # systemd checks only the first word of ExecStart (cage); the app is checked above
            from provisioning.update import units as update_units

            names = [SERVICE_NAME, update_units.TIMER, update_units.PATH]
            if not note:  # the release is here: the updater's kiosk-provision beside kiosk can be checked too
                names.append(update_units.SERVICE)
            verify_units([stage_root / "etc/systemd/system" / name for name in names])
    return written, note


def describe(written: list[str], root: Path, note: str = "") -> str:
    """Human summary of an install."""
    return "\n".join([f"staged into {root}:"] + [f"  /{rel}" for rel in written] + ([note] if note else []))
