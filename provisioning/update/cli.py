"""`kiosk-provision update check|apply`: the technician's and the update timer's way to fleet updates."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from provisioning.update.apply import UpdateRequest
    from provisioning.update.gate import Gate
    from provisioning.update.layout import ReleaseLayout

EPILOG = """\
examples:
  kiosk-provision update check --json
  kiosk-provision update apply --repo https://updates.example/kiosk --tuf-root root.json
  kiosk-provision update apply --root /tmp/stage --config kiosk.toml --json
"""


def add_arguments(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `update` with its `check` and `apply` subcommands."""
    up = sub.add_parser("update", help="check for, download, verify and install a signed release",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = up.add_subparsers(dest="update_action", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", default=argparse.SUPPRESS,
                        help="config file (default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml when it exists, "
                             "else the demo profile)")
        sp.add_argument("--repo", default=None, metavar="URL", help="repository URL (default: update.repo)")
        sp.add_argument("--tuf-root", default=None, metavar="FILE",
                        help="root.json to trust on first use (default: update.tuf_root); ignored once "
                             "the state folder holds trusted metadata")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        sp.add_argument("--root", default="/", metavar="DIR",
                        help="file-system root holding opt/police-kiosk (default: /; a staging folder, as for install)")

    chk = actions.add_parser("check", help="what is installed, what the repository offers this terminal",
                             epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(chk)
    app = actions.add_parser("apply", help="download, verify, build and self-test the offered release, then "
                                           "point current at it", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    common(app)
    app.add_argument("--force", action="store_true",
                     help="the technician's override of the maintenance window (never of an open session)")
    app.epilog = """after the switch the kiosk restarts (systemd's kiosk.service; with --root or without systemd
the new release's `kiosk run --headless` is started as a trial) and must be READY and report
itself serving within update.gate_s, else current goes back and the version is never taken again.
outcomes: installed, up_to_date, not_in_rollout, deferred (exit 0); refused, rolled_back (exit 1).
""" + EPILOG


def build_request(args: argparse.Namespace) -> "UpdateRequest":
    """Flags over config: the repository, the TUF root, the state folder and the file-system root."""
    from kiosk import config as kconfig
    from provisioning.update.apply import UpdateRequest
    from provisioning.update.layout import ReleaseLayout, UpdateState
    from provisioning.update.policy import StationPolicy

    config_path = args.config or os.environ.get("KIOSK_CONFIG") or None
    cfg = kconfig.load(config_path)
    repo = (args.repo or cfg.update.repo).rstrip("/")
    if not repo.startswith(("http://", "https://")):
        raise ConfigError("no update repository: pass --repo URL or set update.repo", key="update.repo",
                          value=repo)
    tuf_root = args.tuf_root or cfg.update.tuf_root or None
    layout = ReleaseLayout(Path(getattr(args, "root", "/") or "/").absolute())
    config_abs = str(Path(config_path).absolute()) if config_path else None
    state = UpdateState(cfg.paths.root() / "update")
    return UpdateRequest(repo_url=repo, terminal_id=cfg.terminal.id, state=state, layout=layout,
                         tuf_root=Path(tuf_root) if tuf_root else None, config_path=config_abs,
                         force=bool(getattr(args, "force", False)),
                         policy=StationPolicy(cfg.paths.root(), cfg.update.window, cfg.terminal.timezone),
                         gate=make_gate(layout, cfg.paths.root(), state.dir, cfg.update.gate_s, config_abs))


def make_gate(layout: "ReleaseLayout", kiosk_state: Path, work_dir: Path, gate_s: float,
              config_path: str | None) -> "Gate":
    """systemd's kiosk.service on a terminal (root ``/`` under systemd); else a trial run the gate starts itself."""
    from provisioning.update.gate import SystemdGate, TrialRunGate, systemd_running

    if layout.root == Path("/") and systemd_running():
        return SystemdGate(kiosk_state, gate_s)
    return TrialRunGate(layout, kiosk_state, work_dir, gate_s, config_path)


def cmd_update(args: argparse.Namespace) -> int:
    """Run `update check` or `update apply`; errors of the update itself never escape as a traceback."""
    from provisioning.update import apply as updates
    from provisioning.update.outcome import ApplyResult

    req = build_request(args)
    if args.update_action == "check":
        found = updates.check(req)  # UpdateRefused: reported by the caller's KioskError handler
        if args.json:
            print(json.dumps(found.to_dict()))
        else:
            print(f"installed {found.installed or 'nothing'}; offered {found.offered or 'nothing newer'}"
                  + ("" if found.offered is None else (" (this terminal is in its rollout)" if found.in_rollout
                                                        else " (not yet to this terminal)"))
                  + (f"; never again: {', '.join(found.bad_versions)}" if found.bad_versions else ""))
        return 0
    try:
        result: ApplyResult = updates.apply(req)
    except Exception as exc:  # a bug, not a refusal: nothing was switched (the switch is the last step)
        logging.getLogger("provisioning.update").debug("apply failed", exc_info=True)
        detail = f"{type(exc).__name__}: {exc}"
        if args.json:
            print(json.dumps({"error": {"code": "internal_error", "message": detail}}))
        else:
            print(f"kiosk-provision: internal_error: {detail}", file=sys.stderr)
        return 70  # EX_SOFTWARE
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.human(), file=sys.stdout if result.ok else sys.stderr)
    return result.exit_status
