"""Help that a new technician can follow: --version, a help line with its default on every flag, an example last.

Walks every parser of `kiosk` and `kiosk-provision` (subcommands included) as argparse builds
them, and runs both console scripts' --version as a technician would.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kiosk
from kiosk import cli as kiosk_cli
from kiosk.cli_help import subparsers
from provisioning import cli as provision_cli

BIN = Path(sys.executable).parent
TOOLS = {"kiosk": kiosk_cli.build_parser, "kiosk-provision": provision_cli.build_parser}


def _all_parsers(name: str) -> list[tuple[str, argparse.ArgumentParser]]:
    parser = TOOLS[name]()
    return [(" ".join((name, *path)), sub) for path, sub in [((), parser), *subparsers(parser)]]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_version_on_both_tools(tool):
    proc = subprocess.run([str(BIN / tool), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"{tool} {kiosk.__version__} ")


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_flag_has_a_help_line_that_names_its_default(tool):
    for where, parser in _all_parsers(tool):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"{where} {name}: no help line"
            default = action.default
            if action.option_strings and default not in (None, False, argparse.SUPPRESS, [], ""):
                shown = parser.formatter_class(prog=where)._get_help_string(action) % {"default": default}
                assert "default" in shown and str(default) in shown, f"{where} {name}: default {default!r} not said"


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_command_help_ends_with_an_example(tool, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for where, parser in _all_parsers(tool):
        text = parser.format_help().rstrip().splitlines()
        marker = max(i for i, line in enumerate(text) if line.rstrip().endswith(("example:", "examples:")))
        examples = [line.strip() for line in text[marker + 1:]]
        assert examples, f"{where}: no example"
        assert all(line.startswith(("kiosk", "printf", "kiosk-provision")) for line in examples if line), where


def test_a_production_config_with_a_simulator_says_what_to_do(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('profile = "production"\n[backend]\nurl = "https://backend.example"\n')
    env = {**os.environ, "KIOSK_CONFIG": str(cfg)}
    proc = subprocess.run([str(BIN / "kiosk-provision"), "init", "--config", str(tmp_path / "new.toml"),
                           "--profile", "production", "--backend-url", "https://backend.example"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 78
    assert "never uses a simulator; run `kiosk-provision init --detect` or set the device's driver" in proc.stderr
