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
from typing import Any, Callable, Mapping, Sequence, TextIO

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
    ("hmac_secret_file", "HMAC secret file (Enter: none yet; `kiosk-provision enroll` writes credentials/hmac.secret)"),
    ("state_dir", "State folder"),
    ("language", "Screen language (zh_CN or en)"),
)
# Section models that check one answer on its own, before the next question.
_SECTIONS = {"terminal": kconfig.TerminalConfig, "backend": kconfig.BackendConfig, "paths": kconfig.PathsConfig,
             "ui": kconfig.UiConfig}
MAX_TRIES = 5  # a technician who types the same mistake five times is stopped, with the reason


def check_answer(attr: str, answer: str, profile: str) -> str:
    """One answer checked on its own (and against the profile already chosen). Raises ConfigError."""
    from pydantic import ValidationError

    key = dict(FIELDS)[attr]
    if attr == "profile":
        if answer not in ("demo", "production"):
            raise ConfigError(f"profile: must be demo or production; got {answer!r}", key=key, value=answer)
        return answer
    if attr == "hmac_secret_file" and not answer:
        return answer  # no secret yet: enrollment writes it
    section, _, name = key.partition(".")
    try:
        _SECTIONS[section].model_validate({name: answer})
    except ValidationError as err:
        msg = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{key}: {msg}; got {answer!r}", key=key, value=answer) from None
    if profile == "production" and attr == "backend_url" and not answer.startswith("https://"):
        raise ConfigError(f"{key}: the production profile talks to the backend over https only; got {answer!r}",
                          key=key, value=answer)
    if not answer.strip() and attr != "hmac_secret_file":
        raise ConfigError(f"{key}: must not be empty", key=key, value=answer)
    return answer


def check_device_answer(name: str, answer: str, profile: str) -> dict[str, Any]:
    """One device answer as a device table, checked on its own. Raises ConfigError."""
    from pydantic import ValidationError

    table = parse_device_spec(f"{name}={answer}")[1]
    try:
        dev = kconfig.DeviceConfig.model_validate(table)
    except ValidationError as err:
        raise ConfigError(f"devices.{name}: {err.errors()[0]['msg']}", key=f"devices.{name}", value=answer) from None
    if profile == "production" and dev.enabled and dev.driver == "sim":
        raise ConfigError(f"devices.{name}.driver: the production profile never uses a simulator; give the real "
                          "driver (e.g. usb,vendor_id=0x...,product_id=0x...), or off", key=f"devices.{name}.driver",
                          value=answer)
    if profile == "production" and name == "pcsc" and dev.enabled and not dev.options.get("trust_store"):
        raise ConfigError("devices.pcsc.options.trust_store: the production profile checks chips against a CSCA "
                          "trust store; add trust_store=/etc/kiosk/csca", key="devices.pcsc.options.trust_store",
                          value=answer)
    return table


def _ask_until_valid(prompt: str, default: Any, check: Callable[[str], Any], stdin: TextIO, out: TextIO) -> Any:
    """Ask until ``check`` accepts the answer; each refusal is explained and the question asked again."""
    for _ in range(MAX_TRIES):
        answer = _ask(prompt, default, stdin.readline, out)
        try:
            return check(answer)
        except ConfigError as err:
            out.write(f"  not accepted: {err.detail}. Try again.\n")
    raise ConfigError(f"init: {prompt!r} was refused {MAX_TRIES} times; nothing was written", key="", value=None)


def ask_answers(values: dict[str, Any], devices: dict[str, dict[str, Any]],
                stdin: TextIO = sys.stdin, out: TextIO = sys.stderr,
                detected: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Ask every question on ``out``, reading answers from ``stdin`` (Enter keeps the default shown).

    Each answer is checked as it is given and asked again when refused, so one typo costs one
    line, not the session. ``detected`` (what `detect` found) gives the devices' defaults.
    """
    defaults = KioskConfig.model_construct()
    for attr, prompt in _QUESTIONS:
        key = dict(FIELDS)[attr]
        current = values.get(attr)
        if current is None:
            current = _get(defaults.model_dump(), key)
        profile = str(values.get("profile") or "demo")
        values[attr] = _ask_until_valid(prompt, current, lambda a, attr=attr: check_answer(attr, a, profile),
                                        stdin, out)
    profile = str(values.get("profile") or "demo")
    for name in DEVICE_NAMES:
        found = (detected or {}).get(name)
        table = devices.get(name) or (found if found and found.get("enabled", True) else None)
        shown = _describe_table(table) if table else ("off" if profile == "production" else "sim")
        if profile == "production" and shown == "sim":
            shown = "off"  # never offer a simulator as the default of a production terminal
        devices[name] = _ask_until_valid(f"Device {name}: DRIVER[,key=value...] or off", shown,
                                         lambda a, name=name: check_device_answer(name, a, profile), stdin, out)


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


def run(args: argparse.Namespace, stdin: TextIO = sys.stdin, out: TextIO = sys.stderr,
        findings: Sequence[Any] | None = None) -> KioskConfig:
    """Carry out `init` from parsed flags. Raises ConfigError, ConfigExists.

    ``findings`` stands for what `detect` sees on the buses (None: look now).
    """
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
    detected: dict[str, dict[str, Any]] = {}
    if args.detect or args.interactive:  # interactive answers start from what is plugged in
        from provisioning.detect import detect_findings
        from provisioning.models import suggest_devices

        found = detect_findings() if findings is None else findings
        detected = {k: dict(v) for k, v in suggest_devices(found).devices.items()}
        if args.detect:
            devices.update(detected)
    for spec in args.device:
        name, table = parse_device_spec(spec)
        devices[name] = table
    if args.interactive:
        ask_answers(values, devices, stdin, out, detected)
    data = build_config(values, devices)
    if tuf_root:
        render(data)  # a config that will not be written leaves no root file behind either
        write_atomic(Path(values["tuf_root_dest"]), root_bytes, mode=0o644)
    return write_config(target, data, force=args.force)
