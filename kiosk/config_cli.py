"""`kiosk config`: validate a config file and print it resolved (secrets hidden)."""
from __future__ import annotations

import argparse
import json

from kiosk import config


def cli_config(args: argparse.Namespace) -> int:
    """Load and validate the config; print the resolved values. Exit 78 on a bad config."""
    cfg = config.load(args.config)
    data = cfg.model_dump()
    data["backend"]["hmac_secret"] = "(hidden)"
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(f"profile {cfg.profile}: terminal {cfg.terminal.id}, backend {cfg.backend.url}")
        for name, dev in cfg.devices.items():
            print(f"  {name:16} driver={dev.driver}{'' if dev.enabled else ' (disabled)'}")
    return 0
