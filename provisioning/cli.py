"""`kiosk-provision`: the technician's command for setting up a terminal on site.

- ``detect``: USB devices, serial ports, PC/SC readers and CUPS queues, matched against the
  table of supported models (provisioning.models); suggests the config's [devices] section.
- ``init``: writes the config from flags or answers, validated, atomically.
- ``install --root DIR``: stages systemd units, udev rules and the locked-down session.
- ``selftest``: every configured device, the backend and the clock; non-zero exit on failure.
- ``set-pin``: the technician's maintenance PIN (stored as an scrypt hash in the state folder).
- ``enroll``: key pair, CSR and one-time code → client certificate, pinned CA, HMAC secret, config updated.
- ``rotate-secret``: a new HMAC secret from the backend; the old one stops working once confirmed.
- ``update check|apply``: signed releases from the TUF repository (provisioning.update).
- ``reset-command-store``: a fresh remote-command replay store after the kiosk found it damaged.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from kiosk.errors import KioskError
from provisioning.detect import detect_findings, suggested_toml


CONFIG_HELP = ("the terminal's config (default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml when it exists, "
               "else the demo profile's defaults; init writes to /etc/kiosk/kiosk.toml)")
# Commands that need a config file, not the demo defaults (what to do instead is in the message).
NEEDS_FILE = {"install": "install copies the terminal's config to /etc/kiosk/kiosk.toml",
              "enroll": "enroll writes the credentials into the terminal's config",
              "rotate-secret": "only an enrolled terminal has a secret to rotate"}
COMMANDS_WITHOUT_CONFIG = frozenset({"detect"})
# What to do next when enrollment fails in these ways.
ENROLL_HINTS = {
    "enrollment_code_used": "This code was already used: ask the operator for a new enrollment code",
    "enrollment_code_expired": "Ask the operator for a new enrollment code",
    "enrollment_code_invalid": "Check the code and the terminal id (terminal.id) it was issued for, or ask the "
                               "operator for a new one",
    "backend_tls_failed": "If this is the API port (it asks for the terminal's client certificate, which an "
                          "unenrolled terminal does not have yet), enrol against the enrollment port instead "
                          "(`kiosk backend-sim --tls` prints it as \"enrollment listener\"); otherwise check that "
                          "--ca-file is the backend's CA",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of kiosk-provision."""
    from kiosk.cli_help import HelpFormatter, example, version_string
    from provisioning import init_config

    p = argparse.ArgumentParser(prog="kiosk-provision", description="provision a kiosk terminal",
                                formatter_class=HelpFormatter,
                                epilog=example("kiosk-provision detect", "kiosk-provision selftest --json"))
    p.add_argument("--version", action="version", version=version_string("kiosk-provision"))
    p.add_argument("--config", help=CONFIG_HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(  # type: ignore[method-assign]
        *a, **{"parents": [common], "formatter_class": HelpFormatter, **k})
    d = sub.add_parser("detect", help="find devices, match them to supported models, suggest [devices]",
                       epilog=example("kiosk-provision detect --toml"))
    d.add_argument("--json", action="store_true", help="the devices found, as a JSON array")
    d.add_argument("--toml", action="store_true", help="only the suggested [devices] section")

    init_config.add_arguments(sub.add_parser(
        "init", help="write the terminal's config (TOML)",
        epilog=example("kiosk-provision init --interactive --detect",
                       "kiosk-provision init --config /etc/kiosk/kiosk.toml --detect --profile production "
                       "--terminal-id JN-LX-0042 --backend-url https://backend.example --state-dir /var/lib/kiosk")))

    from provisioning.update.layout import CURRENT_KIOSK_BIN

    ins = sub.add_parser("install", help="stage systemd units, udev rules and the kiosk session into DIR",
                         epilog=example("kiosk-provision install --root /tmp/kiosk-root --config /etc/kiosk/kiosk.toml"))
    ins.add_argument("--root", required=True,
                     help="staging folder mirroring /: new, empty, or one an earlier install made (then replaced "
                          "whole); any other folder is refused")
    ins.add_argument("--kiosk-bin", default=CURRENT_KIOSK_BIN,
                     help="absolute path of the `kiosk` entry point on the target: the installed release "
                          "(never a development checkout)")
    ins.add_argument("--user", default="kiosk", help="the unprivileged user the kiosk runs as")
    ins.add_argument("--watchdog-sec", type=int, default=30, help="systemd watchdog period, 5..600 s")
    ins.add_argument("--metrics-port", type=int, default=None,
                     help="serve metrics on this port (default: the port of the config's [metrics] listen; the "
                          "host is always [metrics] listen, loopback unless allow_remote)")
    ins.add_argument("--no-verify", action="store_true", help="skip `systemd-analyze verify`")

    sub.add_parser("set-pin", help="set the technician's maintenance PIN (read twice from stdin)",
                   epilog=example("kiosk-provision set-pin --config /etc/kiosk/kiosk.toml",
                                  "printf '246810\\n246810\\n' | kiosk-provision set-pin"))

    from provisioning import enroll

    enroll.add_arguments(sub)

    from provisioning.update import cli as update_cli

    update_cli.add_arguments(sub)
    sub.add_parser("reset-command-store",
                   help="start the remote-command replay store afresh (after the kiosk reported it damaged)",
                   epilog=example("kiosk-provision reset-command-store --config /etc/kiosk/kiosk.toml"))

    st = sub.add_parser("selftest", help="check every configured device, the backend and the clock",
                        epilog=example("kiosk-provision selftest --json > acceptance-selftest.json"))
    st.add_argument("--backend-url", default=None, help="override backend.url (default: the config's)")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def resolve_config(args: argparse.Namespace) -> None:
    """Apply the one config rule to ``args.config`` and say which config this command uses. Raises ProvisionError."""
    from kiosk import config as kconfig
    from provisioning.errors import ProvisionError

    if args.command in COMMANDS_WITHOUT_CONFIG:
        return
    source = kconfig.resolve(getattr(args, "config", None))
    if source.path is None and args.command == "init":
        source = kconfig.ConfigSource(kconfig.SYSTEM_CONFIG, kconfig.SYSTEM_CONFIG)  # where init writes
    if source.path is None and args.command in NEEDS_FILE:
        raise ProvisionError(f"{args.command} needs a config file and none was found (no --config, no $KIOSK_CONFIG, "
                             f"no {kconfig.SYSTEM_CONFIG}): {NEEDS_FILE[args.command]}; write one first with "
                             "`kiosk-provision init --interactive`")
    args.config = source.path
    print(f"kiosk-provision: {source.describe()}", file=sys.stderr)


def _cmd_detect(args: argparse.Namespace) -> int:
    findings = detect_findings()
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
        return 0
    if not args.toml:
        for f in findings:
            model = f"{f.model.maker} {f.model.model} -> {f.model.device}" if f.model else ""
            print(f"{f.bus:7} {f.address:24} {f.description:40} {model}".rstrip())
        print()
    print(suggested_toml(findings), end="")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from provisioning import init_config

    cfg = init_config.run(args)
    print(f"wrote {args.config}: profile {cfg.profile}, terminal {cfg.terminal.id}", file=sys.stderr)
    import tomllib

    missing = init_config.still_to_enroll(tomllib.loads(Path(args.config).read_text(encoding="utf-8")))
    if missing:
        print(f"next: kiosk-provision enroll --config {args.config} --backend URL --code CODE --ca-file CA; until then "
              f"the kiosk refuses this config ({missing} is not set)", file=sys.stderr)
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
    from kiosk import config as kconfig
    from provisioning import install

    cfg = kconfig.load(args.config)
    opts = install.InstallOptions(root=Path(args.root), kiosk_bin=args.kiosk_bin,
                                  config_source=Path(args.config), user=args.user, watchdog_s=args.watchdog_sec,
                                  metrics_port=args.metrics_port, verify=not args.no_verify)
    written, app_note = install.install(cfg, opts)
    notes = "\n".join(n for n in (install.metrics_note(cfg, opts), app_note) if n)
    print(install.describe(written, opts.root, notes))
    return 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from kiosk import config as kconfig
    from provisioning.selftest import print_report, run_selftest

    report = run_selftest(kconfig.load(args.config), base_url=args.backend_url)
    print_report(report, args.json)
    return 0 if report.ok else 1


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


def _cmd_set_pin(args: argparse.Namespace) -> int:
    from kiosk import config as kconfig
    from kiosk.services.maintenance import MaintenanceAccess
    from provisioning.errors import ProvisionError

    cfg = kconfig.load(args.config)
    first = _read_secret("New maintenance PIN: ")
    if not first:
        raise ProvisionError("no PIN given on standard input; type it twice when asked, or pipe it: "
                             "printf '246810\\n246810\\n' | kiosk-provision set-pin")
    if _read_secret("Repeat the PIN: ") != first:
        raise ProvisionError("the two PINs differ; nothing was changed")
    access = MaintenanceAccess.for_state_dir(cfg.paths.root())
    access.set_pin(first)
    print(f"maintenance PIN set ({access.path})", file=sys.stderr)
    return 0


def _cmd_reset_command_store(args: argparse.Namespace) -> int:
    from kiosk import config as kconfig
    from kiosk.services.heartbeat import reset_replay_store

    done = reset_replay_store(kconfig.load(args.config).paths.root())
    state = f"was damaged: {done.was_damaged}" if done.was_damaged else "was readable"
    kept = f"; the old file is kept as {done.set_aside}" if done.set_aside else ""
    print(f"remote command replay store {done.path} reset ({state}){kept}. Commands issued before now are refused; "
          "ask the control room to send again any command still needed", file=sys.stderr)
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    from provisioning import enroll

    path = args.config
    try:
        done = _enroll(args, path)
    except KioskError as err:
        hint = ENROLL_HINTS.get(err.code)
        if hint:
            err.detail = f"{err.detail}. {hint}"
        raise
    print(f"enrolled terminal {done.terminal_id}: credentials in {done.credentials_dir}, "
          f"certificate valid until {done.certificate_not_after}; {done.config_path} now calls {done.api_url}",
          file=sys.stderr)
    if not args.no_verify:
        enroll.verify_enrollment(path)
        print("signed test call with the new credentials: OK", file=sys.stderr)
    return 0


def _enroll(args: argparse.Namespace, path: str) -> Any:
    from provisioning import enroll

    return enroll.enroll(path, args.backend, args.code, credentials_dir=args.credentials_dir, ca_file=args.ca_file or "",
                         group=args.group)


def _cmd_rotate_secret(args: argparse.Namespace) -> int:
    from provisioning import enroll

    path = enroll.rotate_secret(args.config)
    print(f"HMAC secret rotated ({path}); restart the kiosk so it signs with the new one", file=sys.stderr)
    return 0


def _cmd_update(args: argparse.Namespace) -> int:
    from provisioning.update.cli import cmd_update

    return cmd_update(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the kiosk-provision console script."""
    args = build_parser().parse_args(argv)
    handlers = {"detect": _cmd_detect, "init": _cmd_init, "install": _cmd_install, "selftest": _cmd_selftest,
                "set-pin": _cmd_set_pin, "enroll": _cmd_enroll, "rotate-secret": _cmd_rotate_secret,
                "update": _cmd_update, "reset-command-store": _cmd_reset_command_store}
    try:
        resolve_config(args)
        return handlers[args.command](args)
    except KioskError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": err.to_dict("en")}, ensure_ascii=False))
        else:
            print(f"kiosk-provision: {err.code}: {err.detail or err.message('en')}", file=sys.stderr)
        return err.exit_status
    except BrokenPipeError:
        from kiosk.cli import quiet_broken_pipe

        return quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line that says so, not a traceback
        print(f"kiosk-provision: internal_error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
