"""One config path for every command: --config, else $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml, else the demo.

The system path is pointed at a file under the test's tmp_path (``kiosk.config.SYSTEM_CONFIG``)
so the machine's own /etc is never written; the commands run in-process through their real
entry points (`kiosk.cli.main`, `provisioning.cli.main`).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import tomli_w

from kiosk import cli as kiosk_cli
from kiosk import config as kconfig
from provisioning import cli as provision_cli


@pytest.fixture
def system_config(tmp_path, monkeypatch) -> Path:
    """A stand-in for /etc/kiosk/kiosk.toml (not created); $KIOSK_CONFIG unset."""
    path = tmp_path / "etc" / "kiosk.toml"
    monkeypatch.setattr(kconfig, "SYSTEM_CONFIG", str(path))
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    return path


def _write(path: Path, terminal_id: str, state: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps({"terminal": {"id": terminal_id}, "paths": {"state_dir": str(state)}}))
    return path


def test_the_rule_flag_then_environment_then_system_file_then_demo(system_config, tmp_path, monkeypatch):
    assert kconfig.resolve() == kconfig.ConfigSource(None, kconfig.DEMO_DEFAULTS)
    assert "demo defaults" in kconfig.resolve().describe()
    _write(system_config, "JN-SYS-0001", tmp_path / "sys-state")
    assert kconfig.resolve() == kconfig.ConfigSource(str(system_config), kconfig.SYSTEM_CONFIG)
    assert kconfig.load().terminal.id == "JN-SYS-0001"
    env = _write(tmp_path / "env.toml", "JN-ENV-0001", tmp_path / "env-state")
    monkeypatch.setenv("KIOSK_CONFIG", str(env))
    assert kconfig.resolve().origin == "$KIOSK_CONFIG" and kconfig.load().terminal.id == "JN-ENV-0001"
    flag = _write(tmp_path / "flag.toml", "JN-FLG-0001", tmp_path / "flag-state")
    assert kconfig.resolve(str(flag)).describe() == f"config: {flag} (from --config)"
    assert kconfig.load(flag).terminal.id == "JN-FLG-0001"


def test_kiosk_commands_read_the_system_config_and_say_so(system_config, tmp_path, capsys):
    _write(system_config, "JN-SYS-0002", tmp_path / "state")
    assert kiosk_cli.main(["config", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["terminal"]["id"] == "JN-SYS-0002"
    assert err.splitlines()[0] == f"kiosk: config: {system_config}"
    assert kiosk_cli.main(["stats", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["terminal"] == "JN-SYS-0002" and err.startswith(f"kiosk: config: {system_config}")


def test_kiosk_says_when_it_falls_back_to_the_demo_defaults(system_config, capsys):
    assert kiosk_cli.main(["config", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["terminal"]["id"] == kconfig.DEMO_TERMINAL_ID
    assert "config: demo defaults (no --config, no $KIOSK_CONFIG, no " in err


def test_set_pin_acts_on_the_system_config_not_the_demo_profile(system_config, tmp_path, capsys, monkeypatch):
    state = tmp_path / "state"
    _write(system_config, "JN-SYS-0003", state)
    monkeypatch.setattr("sys.stdin", io.StringIO("246810\n246810\n"))
    assert provision_cli.main(["set-pin"]) == 0
    err = capsys.readouterr().err
    assert f"kiosk-provision: config: {system_config}" in err
    assert (state / "maintenance.json").is_file()  # the installed terminal's state, not ~/.local/state/kiosk


def test_set_pin_without_input_says_so(system_config, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert provision_cli.main(["set-pin"]) == 73
    assert "no PIN given on standard input" in capsys.readouterr().err


def test_provision_commands_follow_the_environment(system_config, tmp_path, capsys, monkeypatch):
    env = _write(tmp_path / "env.toml", "JN-ENV-0002", tmp_path / "env-state")
    monkeypatch.setenv("KIOSK_CONFIG", str(env))
    assert provision_cli.main(["reset-command-store"]) == 0
    assert f"kiosk-provision: config: {env} (from $KIOSK_CONFIG)" in capsys.readouterr().err
    assert any((tmp_path / "env-state").iterdir())


def test_init_writes_the_system_path_and_file_commands_refuse_the_demo(system_config, capsys):
    for command in (["install", "--root", "/nonexistent/stage"], ["enroll", "--backend", "http://127.0.0.1:1",
                                                                  "--code", "X"], ["rotate-secret"]):
        assert provision_cli.main(command) == 73
        err = capsys.readouterr().err
        assert "needs a config file and none was found" in err and "kiosk-provision init --interactive" in err
    assert not Path("/nonexistent/stage").exists()
    assert provision_cli.main(["init", "--terminal-id", "JN-SYS-0004"]) == 0
    assert kconfig.load(system_config).terminal.id == "JN-SYS-0004"
    assert f"kiosk-provision: config: {system_config}" in capsys.readouterr().err


def test_every_config_flag_help_names_the_rule():
    from kiosk.cli_help import subparsers

    for build in (kiosk_cli.build_parser, provision_cli.build_parser):
        parser = build()
        for path, sub in [((), parser), *subparsers(parser)]:
            for action in sub._actions:
                if "--config" in action.option_strings:
                    assert "$KIOSK_CONFIG" in action.help and "/etc/kiosk/kiosk.toml" in action.help, path
