"""`kiosk-provision init`: write the terminal's config from flags or a technician's answers.

The mapping built from the answers goes through the same validation as a config read at
start-up (``kiosk.config.from_dict``), the TOML text is read back and validated once more,
and only then is it written atomically (temporary file, fsync, ``os.replace``): an invalid
or half-written config never reaches the target path.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

import tomli_w

from kiosk import config as kconfig
from kiosk.config import DEVICE_NAMES, KioskConfig
from kiosk.errors import ConfigError
from provisioning.atomic import write_atomic
from provisioning.errors import ConfigExists

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?\d+\.\d*$")


def parse_scalar(text: str) -> Any:
    """An option value from the command line: true/false, int, float, else the string (hex ids stay strings)."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if _INT.match(text.strip()):
        return int(text)
    if _FLOAT.match(text.strip()):
        return float(text)
    return text


def parse_device_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`NAME=DRIVER[,key=value...]` or `NAME=off` → (name, device table). Raises ConfigError."""
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or name not in DEVICE_NAMES:
        raise ConfigError(f"--device {spec!r}: expected NAME=DRIVER[,key=value...] with NAME one of "
                          f"{', '.join(DEVICE_NAMES)}", key="devices", value=spec)
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"--device {spec!r}: no driver given", key=f"devices.{name}.driver", value=spec)
    if parts[0] in ("off", "disabled", "none"):
        return name, {"enabled": False}
    options: dict[str, Any] = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--device {spec!r}: option {part!r} is not key=value",
                              key=f"devices.{name}.options", value=part)
        options[key.strip()] = parse_scalar(value.strip())
    table: dict[str, Any] = {"driver": parts[0]}
    if options:
        table["options"] = options
    return name, table


# (flag attribute, dotted config key) for the plain values init accepts.
FIELDS: tuple[tuple[str, str], ...] = (
    ("profile", "profile"),
    ("terminal_id", "terminal.id"),
    ("terminal_name", "terminal.name"),
    ("location", "terminal.location"),
    ("backend_url", "backend.url"),
    ("hmac_secret_file", "backend.hmac_secret_file"),
    ("public_key", "backend.public_key"),
    ("ca_file", "backend.ca_file"),
    ("client_cert_file", "backend.client_cert_file"),
    ("client_key_file", "backend.client_key_file"),
    ("state_dir", "paths.state_dir"),
    ("language", "ui.language"),
    ("fullscreen", "ui.fullscreen"),
    ("update_repo", "update.repo"),
    ("tuf_root_dest", "update.tuf_root"),
)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[last] = value


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    for p in dotted.split("."):
        if not isinstance(data, Mapping) or p not in data:
            return None
        data = data[p]
    return data


def build_config(values: Mapping[str, Any], devices: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The config mapping from flag values (None = leave the default) and device tables."""
    data: dict[str, Any] = {}
    for attr, key in FIELDS:
        value = values.get(attr)
        if value is not None:
            _set(data, key, value)
    if devices:
        data["devices"] = {name: dict(table) for name, table in devices.items()}
    return data


def render(data: Mapping[str, Any]) -> tuple[str, KioskConfig]:
    """Validate ``data``, render it as TOML and validate the text as read back. Raises ConfigError.

    A production config may still lack what `kiosk-provision enroll` writes (the pinned CA, the
    client certificate, the secret, the backend's key): init comes before enrollment.
    """
    kconfig.from_dict(dict(data), before_enrollment=True)
    text = "# Written by kiosk-provision init; check it with `kiosk config --config FILE`.\n" + tomli_w.dumps(data)
    try:
        reread = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # the writer produced something tomllib rejects: a bug, say so
        raise ConfigError(f"generated TOML does not parse: {exc}", key="", value=None) from None
    return text, kconfig.from_dict(reread, before_enrollment=True)


def still_to_enroll(data: Mapping[str, Any]) -> str:
    """The first key enrollment must still fill in before the config loads ("" when it loads as it is)."""
    try:
        kconfig.from_dict(dict(data))
    except ConfigError as err:
        if err.key in kconfig.ENROLLED_KEYS:
            return err.key
        raise
    return ""


def write_config(path: str | Path, data: Mapping[str, Any], *, force: bool = False) -> KioskConfig:
    """Validate and atomically write the config at ``path``. Raises ConfigError, ConfigExists."""
    target = Path(path)
    if target.exists() and not force:
        raise ConfigExists(f"{target} exists; pass --force to replace it", path=str(target))
    text, cfg = render(data)
    write_atomic(target, text.encode("utf-8"), mode=0o640)
    return cfg


def _ask(prompt: str, default: Any, read: Callable[[], str], out: TextIO) -> str:
    shown = "" if default in (None, "") else f" [{default}]"
    out.write(f"{prompt}{shown}: ")
    out.flush()
    line = read()
    if line == "":
        raise ConfigError("init: the answers ended before every question was answered", key="", value=None)
    answer = line.strip()
    return answer if answer else ("" if default is None else str(default))


_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("profile", "Profile (demo or production)"),
    ("terminal_id", "Terminal id"),
    ("terminal_name", "Terminal name"),
    ("location", "Location"),
    ("backend_url", "Backend URL (https://... or embedded)"),
    ("hmac_secret_file", "HMAC secret file written by enrollment (empty: none yet)"),
    ("state_dir", "State folder"),
    ("language", "Screen language (zh_CN or en)"),
)


def ask_answers(values: dict[str, Any], devices: dict[str, dict[str, Any]],
                stdin: TextIO = sys.stdin, out: TextIO = sys.stderr) -> None:
    """Ask every question on ``out`` and read answers from ``stdin`` (Enter keeps the default shown)."""
    defaults = KioskConfig.model_construct()
    for attr, prompt in _QUESTIONS:
        key = dict(FIELDS)[attr]
        current = values.get(attr)
        if current is None:
            current = _get(defaults.model_dump(), key)
        values[attr] = _ask(prompt, current, stdin.readline, out)
    for name in DEVICE_NAMES:
        table = devices.get(name)
        shown = _describe_table(table) if table else "sim"
        answer = _ask(f"Device {name}: DRIVER[,key=value...] or off", shown, stdin.readline, out)
        if answer and answer != shown:
            devices[name] = parse_device_spec(f"{name}={answer}")[1]
        elif table:
            devices[name] = table


def _describe_table(table: Mapping[str, Any]) -> str:
    if table.get("enabled") is False:
        return "off"
    opts = ",".join(f"{k}={v}" for k, v in (table.get("options") or {}).items())
    return str(table.get("driver", "sim")) + (f",{opts}" if opts else "")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `kiosk-provision init`."""
    p.add_argument("--force", action="store_true", help="replace an existing config")
    p.add_argument("--interactive", action="store_true",
                   help="ask for each value on the terminal, checking each answer as it is given")
    p.add_argument("--detect", action="store_true", help="fill [devices] from what `detect` finds (also the "
                                                         "defaults offered by --interactive)")
    p.add_argument("--profile", choices=["demo", "production"], help="demo (simulators) or production (default: demo)")
    p.add_argument("--terminal-id", help="the id on the cabinet label, e.g. JN-LX-0042 (default: JN-DEMO-0001)")
    p.add_argument("--terminal-name", help="the station's name shown to residents (default: the demo station)")
    p.add_argument("--location", help="where the terminal stands (default: the demo station's)")
    p.add_argument("--backend-url", help="https://... of the backend, or embedded (default: embedded)")
    p.add_argument("--hmac-secret-file", help="the secret file; leave out before enrollment, which writes "
                                              "credentials/hmac.secret beside the config")
    p.add_argument("--public-key", help="base64 Ed25519 key of the backend (enroll writes it)")
    p.add_argument("--ca-file", help="the backend's CA to pin (enroll writes credentials/backend-ca.pem)")
    p.add_argument("--client-cert-file", help="client certificate (enroll writes credentials/terminal.crt)")
    p.add_argument("--client-key-file", help="client key (enroll writes credentials/terminal.key)")
    p.add_argument("--state-dir", help="journal, statistics and spool (default: ~/.local/state/kiosk; "
                                       "/var/lib/kiosk on an installed terminal)")
    p.add_argument("--language", choices=["zh_CN", "en"], help="screen language (default: zh_CN)")
    p.add_argument("--fullscreen", action=argparse.BooleanOptionalAction, default=None,
                   help="full-screen window (default: off)")
    p.add_argument("--update-repo", metavar="URL", help="the TUF repository releases come from (update.repo)")
    p.add_argument("--tuf-root", metavar="FILE",
                   help="the repository's root.json: checked, copied beside the config as tuf-root.json "
                        "and named in update.tuf_root")
    p.add_argument("--device", action="append", default=[], metavar="NAME=DRIVER[,k=v...]",
                   help="a device table, e.g. receipt_printer=usb,vendor_id=0x04b8,product_id=0x0202 "
                        "(repeat per device; default: none)")


def run(args: argparse.Namespace, stdin: TextIO = sys.stdin, out: TextIO = sys.stderr) -> KioskConfig:
    """Carry out `init` from parsed flags. Raises ConfigError, ConfigExists."""
    target = Path(args.config)
    if target.exists() and not args.force:  # before any question: don't waste the technician's answers
        raise ConfigExists(f"{target} exists; pass --force to replace it", path=str(target))
    values = {attr: getattr(args, attr, None) for attr, _ in FIELDS}
    tuf_root = getattr(args, "tuf_root", None)
    if tuf_root:
        from provisioning.update.trust import TUF_ROOT_NAME, validate_tuf_root

        try:
            root_bytes = Path(tuf_root).read_bytes()
        except OSError as exc:
            raise ConfigError(f"--tuf-root: cannot read {tuf_root}: {exc.strerror}", key="update.tuf_root",
                              value=tuf_root) from None
        validate_tuf_root(root_bytes, tuf_root)  # before any question is asked
        values["tuf_root_dest"] = str((target.parent / TUF_ROOT_NAME).absolute())
    devices: dict[str, dict[str, Any]] = {}
    if args.detect:
        from provisioning.detect import detect_findings
        from provisioning.models import suggest_devices

        devices.update({k: dict(v) for k, v in suggest_devices(detect_findings()).devices.items()})
    for spec in args.device:
        name, table = parse_device_spec(spec)
        devices[name] = table
    if args.interactive:
        ask_answers(values, devices, stdin, out)
    data = build_config(values, devices)
    if tuf_root:
        render(data)  # a config that will not be written leaves no root file behind either
        write_atomic(Path(values["tuf_root_dest"]), root_bytes, mode=0o644)
    return write_config(target, data, force=args.force)
