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
from typing import Sequence

from kiosk.errors import KioskError
from provisioning.detect import detect_findings, suggested_toml


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of kiosk-provision."""
    from provisioning import init_config

    p = argparse.ArgumentParser(prog="kiosk-provision", description="provision a kiosk terminal")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="find devices, match them to supported models, suggest [devices]")
    d.add_argument("--json", action="store_true", help="the devices found, as a JSON array")
    d.add_argument("--toml", action="store_true", help="only the suggested [devices] section")

    init_config.add_arguments(sub.add_parser("init", help="write the terminal's config (TOML)"))

    ins = sub.add_parser("install", help="stage systemd units, udev rules and the kiosk session into DIR")
    ins.add_argument("--root", required=True, help="staging folder mirroring / (created or replaced whole)")
    ins.add_argument("--config", required=True, help="the terminal's config (copied to /etc/kiosk/kiosk.toml)")
    ins.add_argument("--kiosk-bin", default=None, help="absolute path of the `kiosk` entry point on the target")
    ins.add_argument("--user", default="kiosk")
    ins.add_argument("--watchdog-sec", type=int, default=30)
    ins.add_argument("--metrics-port", type=int, default=None,
                     help="serve metrics on this port (the host is the config's [metrics] listen, loopback by default)")
    ins.add_argument("--no-verify", action="store_true", help="skip `systemd-analyze verify`")

    pin = sub.add_parser("set-pin", help="set the technician's maintenance PIN (read twice from stdin)")
    pin.add_argument("--config", default=None, help="config file (its paths.state_dir holds the PIN hash)")

    from provisioning import enroll

    enroll.add_arguments(sub)

    from provisioning.update import cli as update_cli

    update_cli.add_arguments(sub)
    rc = sub.add_parser("reset-command-store",
                        help="start the remote-command replay store afresh (after the kiosk reported it damaged)")
    rc.add_argument("--config", default=None, help="config file (its paths.state_dir holds the store)")

    st = sub.add_parser("selftest", help="check every configured device, the backend and the clock")
    st.add_argument("--config", default=None, help="config file (default: $KIOSK_CONFIG, else the demo profile)")
    st.add_argument("--backend-url", default=None, help="override backend.url")
    st.add_argument("--json", action="store_true")
    return p


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
    opts = install.InstallOptions(root=Path(args.root), kiosk_bin=args.kiosk_bin or install.default_kiosk_bin(),
                                  config_source=Path(args.config), user=args.user, watchdog_s=args.watchdog_sec,
                                  metrics_port=args.metrics_port, verify=not args.no_verify)
    written = install.install(cfg, opts)
    print(install.describe(written, opts.root, install.metrics_note(cfg, opts)))
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

    path = enroll.config_path(args.config)
    done = enroll.enroll(path, args.backend, args.code, credentials_dir=args.credentials_dir, ca_file=args.ca_file,
                         group=args.group)
    print(f"enrolled terminal {done.terminal_id}: credentials in {done.credentials_dir}, "
          f"certificate valid until {done.certificate_not_after}; {done.config_path} now calls {done.api_url}",
          file=sys.stderr)
    if not args.no_verify:
        enroll.verify_enrollment(path)
        print("signed test call with the new credentials: OK", file=sys.stderr)
    return 0


def _cmd_rotate_secret(args: argparse.Namespace) -> int:
    from provisioning import enroll

    path = enroll.rotate_secret(enroll.config_path(args.config))
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
        return handlers[args.command](args)
    except KioskError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": err.to_dict("en")}, ensure_ascii=False))
        else:
            print(f"kiosk-provision: {err.code}: {err.detail or err.message('en')}", file=sys.stderr)
        return err.exit_status


if __name__ == "__main__":
    sys.exit(main())
