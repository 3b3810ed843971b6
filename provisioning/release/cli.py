"""`kiosk-release`: the publisher's command — build a release, keep the TUF repository that offers it to the fleet.

Example, from a source checkout on a Debian 12 machine::

    kiosk-release build --out wheelhouse/
    kiosk-release init --repo repo/ --keys keys/
    kiosk-release publish --repo repo/ --keys keys/ wheelhouse/police-kiosk-0.1.0.json --rollout 10
    kiosk-release rollout --repo repo/ --keys keys/ --version 0.1.0 --percent 100

The repository folder is static files: serve it with any web server; terminals are given
its URL (``update.repo``) and ``repo/metadata/root.json`` (``kiosk-provision init --tuf-root``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kiosk.errors import KioskError

if TYPE_CHECKING:
    from provisioning.release.repository import Publisher


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of kiosk-release."""
    p = argparse.ArgumentParser(prog="kiosk-release", description="build kiosk releases and publish them over TUF",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="the project's wheel, every dependency's wheel and the manifest",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--out", required=True, help="output folder; also the wheelhouse later builds reuse")
    b.add_argument("--version", default=None, help="stamp this version into the project's wheel (default: the source's)")
    b.add_argument("--source", default=None, help="source checkout to build (default: the one this tool runs from)")
    b.add_argument("--min-from-version", default=None,
                   help="oldest installed version that may update to this release directly (default: any)")

    def repo_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--repo", required=True, help="the repository folder (metadata/ and targets/ inside)")
        sp.add_argument("--keys", required=True, help="the folder holding the role keys (ROLE.pem)")

    i = sub.add_parser("init", help="create ed25519 keys, a root and an empty repository",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    repo_args(i)
    i.add_argument("--expires-days", type=int, default=365, help="how long the root stays valid")

    pub = sub.add_parser("publish", help="add a release (its manifest and wheels) to the repository",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    repo_args(pub)
    pub.add_argument("manifest", metavar="MANIFEST", help="police-kiosk-VERSION.json, its wheels beside it")
    pub.add_argument("--rollout", type=int, default=100, metavar="PERCENT", help="share of terminals offered it")

    r = sub.add_parser("rollout", help="change the share of terminals a release is offered to")
    repo_args(r)
    r.add_argument("--version", required=True)
    r.add_argument("--percent", type=int, required=True, help="0..100")

    h = sub.add_parser("halt", help="stop offering a release (halted, rollout 0)")
    repo_args(h)
    h.add_argument("--version", required=True)

    f = sub.add_parser("refresh", help="re-sign targets, snapshot and timestamp before they expire (run daily)")
    repo_args(f)

    ls = sub.add_parser("list", help="the published releases and their rollout")
    repo_args(ls)
    ls.add_argument("--json", action="store_true")
    return p


def _cmd_build(args: argparse.Namespace) -> int:
    from provisioning.release.build import build_release

    manifest, path = build_release(Path(args.out), version=args.version,
                                   source=Path(args.source) if args.source else None,
                                   min_from_version=args.min_from_version,
                                   log=lambda line: print(line, file=sys.stderr, flush=True))
    size = manifest.total_size / 1e6
    print(f"built release {manifest.version}: {len(manifest.wheels)} wheels, {size:.1f} MB; manifest {path}")
    return 0


def _publisher(args: argparse.Namespace) -> "Publisher":
    from provisioning.release.repository import Publisher

    return Publisher(Path(args.repo), Path(args.keys))


def _cmd_init(args: argparse.Namespace) -> int:
    from provisioning.release.repository import Publisher

    Publisher.init(Path(args.repo), Path(args.keys), expires_days=args.expires_days)
    print(f"repository {args.repo} created; keys in {args.keys} (keep the root key offline); "
          f"give terminals {Path(args.repo) / 'metadata' / 'root.json'}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    entry = _publisher(args).publish(Path(args.manifest), rollout_percent=args.rollout)
    print(f"published {entry.version} to {entry.rollout_percent} % of terminals")
    return 0


def _cmd_rollout(args: argparse.Namespace) -> int:
    entry = _publisher(args).set_rollout(args.version, args.percent)
    print(f"release {entry.version} now offered to {entry.rollout_percent} % of terminals")
    return 0


def _cmd_halt(args: argparse.Namespace) -> int:
    entry = _publisher(args).halt(args.version)
    print(f"release {entry.version} halted: offered to no terminal")
    return 0


def _cmd_refresh(args: argparse.Namespace) -> int:
    publisher = _publisher(args)
    publisher.refresh()
    print(f"re-signed; timestamp valid until {publisher.timestamp.signed.expires.isoformat()}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    entries = _publisher(args).releases()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
    else:
        for e in entries:
            state = "halted" if e.halted else f"{e.rollout_percent:3d} %"
            print(f"{e.version:16} {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the kiosk-release console script."""
    args = build_parser().parse_args(argv)
    handlers = {"build": _cmd_build, "init": _cmd_init, "publish": _cmd_publish, "rollout": _cmd_rollout,
                "halt": _cmd_halt, "refresh": _cmd_refresh, "list": _cmd_list}
    try:
        return handlers[args.command](args)
    except KioskError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": err.to_dict("en")}, ensure_ascii=False))
        else:
            print(f"kiosk-release: {err.code}: {err.detail or err.message('en')}", file=sys.stderr)
        return err.exit_status


if __name__ == "__main__":
    sys.exit(main())
