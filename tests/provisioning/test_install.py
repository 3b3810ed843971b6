"""kiosk-provision install --root: units that systemd accepts, udev rules, session; all or nothing."""
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config as kconfig
from provisioning import install
from provisioning.errors import InstallVerifyFailed
from provisioning.init_config import write_config


@pytest.fixture
def kiosk_bin(tmp_path):
    """An installed release's entry point, outside any source checkout (as /opt/police-kiosk/current/bin/kiosk)."""
    path = tmp_path / "opt/police-kiosk/current/bin/kiosk"
    path.parent.mkdir(parents=True)
    path.write_text(f"#!{sys.executable}\nfrom kiosk.cli import main\nmain()\n")
    path.chmod(0o755)
    provision = path.parent / "kiosk-provision"  # the updater's unit runs the release's kiosk-provision
    provision.write_text(f"#!{sys.executable}\nfrom provisioning.cli import main\nmain()\n")
    provision.chmod(0o755)
    return str(path)


@pytest.fixture
def production_config(tmp_path):
    path = tmp_path / "kiosk.toml"
    write_config(path, {
        "profile": "production",
        "backend": {"url": "https://backend.example", "hmac_secret_file": "/etc/kiosk/hmac.key",
                    "ca_file": "/etc/kiosk/credentials/backend-ca.pem",
                    "client_cert_file": "/etc/kiosk/credentials/terminal.crt",
                    "client_key_file": "/etc/kiosk/credentials/terminal.key",
                    "public_key": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="},
        "paths": {"state_dir": "/var/lib/kiosk"},
        "devices": {
            "id_card": {"driver": "usb", "options": {"vendor_id": "0x0400", "product_id": "0xc35a"}},
            "receipt_printer": {"driver": "usb", "options": {"printer": "usb:04b8:0202"}},
            "a4_printer": {"driver": "cups", "options": {"queue": "a4"}},
            "pcsc": {"driver": "pcsc", "options": {"trust_store": "/etc/kiosk/csca"}},
            "scanner": {"enabled": False},
            "camera": {"enabled": False},
            "speaker": {"driver": "sdl"},
        }})
    return path


def _install(root, config_path, *extra, kiosk_bin=None):
    bin_flag = ["--kiosk-bin", kiosk_bin] if kiosk_bin else []
    return subprocess.run([sys.executable, "-m", "provisioning.cli", "install", "--root", str(root),
                           "--config", str(config_path), *bin_flag, *extra],
                          capture_output=True, text=True, timeout=120)


def _unit(root):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(root / "etc/systemd/system/kiosk.service")
    return parser


def test_install_stages_units_that_pass_systemd_analyze_verify(tmp_path, production_config, kiosk_bin):
    root = tmp_path / "stage"
    proc = _install(root, production_config, "--metrics-port", "9466", kiosk_bin=kiosk_bin)
    assert proc.returncode == 0, proc.stderr
    unit = root / "etc/systemd/system/kiosk.service"
    # verify again here, independently of the installer's own check; a clean unit prints nothing
    check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check.stderr
    svc = _unit(root)["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "all"
    assert int(svc["WatchdogSec"]) == 30 and svc["Restart"] == "on-failure"
    assert svc["User"] == "kiosk" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["CapabilityBoundingSet"] == ""
    assert svc["ExecStart"] == f"/usr/bin/cage -- {kiosk_bin} --config /etc/kiosk/kiosk.toml run --metrics-port 9466"
    # The port flag never widens where metrics listen: the host is the installed config's [metrics] listen.
    assert kconfig.load(root / "etc/kiosk/kiosk.toml").metrics.address(9466) == ("127.0.0.1", 9466)
    assert "# Metrics: http://127.0.0.1:9466/metrics, loopback only" in unit.read_text()
    assert "Metrics: http://127.0.0.1:9466/metrics, loopback only" in proc.stdout
    assert svc["TTYPath"] == "/dev/tty1" and svc["PAMName"] == "login"
    environment = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("Environment=")]
    assert "PYTHONMALLOC=malloc" in environment and "KIOSK_CONFIG=/etc/kiosk/kiosk.toml" in environment
    assert "getty@tty1.service" in _unit(root)["Unit"]["Conflicts"]
    # tty1 belongs to the kiosk; no other VT gets a login
    assert (root / "etc/systemd/system/getty@tty1.service").readlink() == Path("/dev/null")
    assert "NAutoVTs=0" in (root / "etc/systemd/logind.conf.d/50-kiosk.conf").read_text()
    assert (root / "etc/systemd/system/graphical.target.wants/kiosk.service").is_symlink()
    cfg_copy = root / "etc/kiosk/kiosk.toml"
    assert kconfig.load(cfg_copy) == kconfig.load(production_config)
    assert cfg_copy.stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stage")]
    assert (root / install.INSTALL_MARKER).read_text().splitlines()[0] == "/etc/kiosk/kiosk.toml"


def test_udev_rules_cover_every_configured_usb_device_for_the_kiosk_group(tmp_path, production_config, kiosk_bin):
    root = tmp_path / "stage"
    assert _install(root, production_config, kiosk_bin=kiosk_bin).returncode == 0
    rules = (root / "etc/udev/rules.d/70-police-kiosk.rules").read_text()
    pattern = re.compile(r'^SUBSYSTEM=="usb", ENV\{DEVTYPE\}=="usb_device", ATTR\{idVendor\}=="([0-9a-f]{4})", '
                         r'ATTR\{idProduct\}=="([0-9a-f]{4})", GROUP="kiosk", MODE="0660"$')
    ids = {m.groups() for m in map(pattern.match, rules.splitlines()) if m}
    assert ids == {("0400", "c35a"), ("04b8", "0202")}
    assert all(line.startswith("#") or pattern.match(line) for line in rules.splitlines() if line)


def test_sysusers_and_tmpfiles_make_the_user_and_let_only_it_read_the_config(tmp_path, production_config,
                                                                           kiosk_bin):
    root = tmp_path / "stage"
    assert _install(root, production_config, kiosk_bin=kiosk_bin).returncode == 0
    image = tmp_path / "image"  # an empty target system receiving the staged tree
    shutil.copytree(root / "usr", image / "usr")
    shutil.copytree(root / "etc/kiosk", image / "etc/kiosk")
    (image / "etc/kiosk/hmac.key").write_text("enrolled secret\n")
    proc = subprocess.run(["systemd-sysusers", f"--root={image}", str(image / "usr/lib/sysusers.d/kiosk.conf")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    passwd = (image / "etc/passwd").read_text()
    kiosk = [line.split(":") for line in passwd.splitlines() if line.startswith("kiosk:")]
    assert kiosk and int(kiosk[0][2]) < 1000 and kiosk[0][6] == "/usr/sbin/nologin"
    groups = {line.split(":")[0]: line.split(":") for line in (image / "etc/group").read_text().splitlines()}
    assert "kiosk" in groups["video"][3].split(",")
    proc = subprocess.run(["systemd-tmpfiles", f"--root={image}", "--create",
                           str(image / "usr/lib/tmpfiles.d/kiosk.conf")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kiosk_gid = int(groups["kiosk"][2])
    for rel, mode in [("etc/kiosk", 0o750), ("etc/kiosk/kiosk.toml", 0o640), ("etc/kiosk/hmac.key", 0o440)]:
        st = (image / rel).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, kiosk_gid, mode), rel


def test_a_failed_verify_leaves_nothing_behind(tmp_path, production_config):
    root = tmp_path / "stage"
    proc = _install(root, production_config, kiosk_bin=str(tmp_path / "no-such-kiosk"))
    assert proc.returncode == 70 and "units_invalid" in proc.stderr
    assert list(tmp_path.iterdir()) == [production_config]


def test_a_failed_reinstall_keeps_the_previous_tree_whole(tmp_path, production_config, kiosk_bin):
    root = tmp_path / "stage"
    assert _install(root, production_config, kiosk_bin=kiosk_bin).returncode == 0
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cfg = kconfig.load(production_config)
    opts = install.InstallOptions(root=root, kiosk_bin="/no/such/kiosk", config_source=production_config)
    with pytest.raises(InstallVerifyFailed):
        install.install(cfg, opts)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert kiosk_bin in (root / "etc/systemd/system/kiosk.service").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kiosk.toml", "opt", "stage"]


def test_a_reinstall_replaces_the_tree_an_earlier_install_made(tmp_path, production_config, kiosk_bin):
    root = tmp_path / "stage"
    assert _install(root, production_config, kiosk_bin=kiosk_bin).returncode == 0
    (root / "stale").mkdir()
    assert _install(root, production_config, "--watchdog-sec", "45", kiosk_bin=kiosk_bin).returncode == 0
    assert not (root / "stale").exists()
    assert _unit(root)["Service"]["WatchdogSec"] == "45"


def test_a_non_empty_folder_the_install_did_not_make_is_refused_and_kept(tmp_path, production_config, kiosk_bin):
    precious = tmp_path / "precious"
    (precious / "photos").mkdir(parents=True)
    (precious / "photos" / "wedding.jpg").write_bytes(b"irreplaceable")
    proc = _install(precious, production_config, kiosk_bin=kiosk_bin)
    assert proc.returncode == 73
    assert "is not empty and was not made by kiosk-provision install" in proc.stderr and "new or empty" in proc.stderr
    assert (precious / "photos" / "wedding.jpg").read_bytes() == b"irreplaceable"
    assert sorted(p.name for p in precious.iterdir()) == ["photos"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _install(empty, production_config, kiosk_bin=kiosk_bin).returncode == 0  # an empty folder is fine
    file_root = tmp_path / "a-file"
    file_root.write_text("x")
    assert _install(file_root, production_config, kiosk_bin=kiosk_bin).returncode == 73
    assert file_root.read_text() == "x"


def test_exec_start_defaults_to_the_installed_release_and_refuses_a_checkout(tmp_path, production_config):
    from provisioning.update.layout import CURRENT_KIOSK_BIN

    root = tmp_path / "stage"
    proc = _install(root, production_config)
    assert proc.returncode == 0, proc.stderr
    assert CURRENT_KIOSK_BIN == "/opt/police-kiosk/current/bin/kiosk"
    assert _unit(root)["Service"]["ExecStart"].startswith(f"/usr/bin/cage -- {CURRENT_KIOSK_BIN} --config ")
    assert "install a release on the target (`kiosk-provision update apply`)" in proc.stdout
    dev = str(Path(sys.executable).parent / "kiosk")  # this checkout's .venv
    proc = _install(tmp_path / "stage2", production_config, kiosk_bin=dev)
    assert proc.returncode == 73 and "inside the development checkout" in proc.stderr
    assert not (tmp_path / "stage2").exists()
    help_text = subprocess.run([sys.executable, "-m", "provisioning.cli", "install", "--help"], capture_output=True,
                               text=True, env={**os.environ, "COLUMNS": "400"}).stdout
    assert "(default: /opt/police-kiosk/current/bin/kiosk)" in help_text


def test_metrics_port_defaults_to_the_configs_metrics_address(tmp_path, production_config, kiosk_bin):
    text = production_config.read_text() + '\n[metrics]\nlisten = "127.0.0.1:9555"\n'
    production_config.write_text(text)
    root = tmp_path / "stage"
    proc = _install(root, production_config, kiosk_bin=kiosk_bin)
    assert proc.returncode == 0, proc.stderr
    assert _unit(root)["Service"]["ExecStart"].endswith("run --metrics-port 9555")
    assert "Metrics: http://127.0.0.1:9555/metrics, loopback only" in proc.stdout


def test_tmpfiles_never_touch_a_system_folder():
    cfg = kconfig.from_dict({"backend": {"hmac_secret_file": "/tmp/hmac.secret", "ca_file": "/etc/ssl/backend-ca.pem",
                                         "client_cert_file": "/etc/kiosk/credentials/terminal.crt",
                                         "client_key_file": "/etc/kiosk/credentials/terminal.key"}})
    opts = install.InstallOptions(root=Path("/nonexistent"), config_source=Path("x"))
    lines = [line.split() for line in install.tmpfiles(opts, cfg).splitlines() if not line.startswith("#")]
    paths = [parts[1] for parts in lines]
    for system in ("/", "/tmp", "/etc", "/etc/ssl", "/var", "/usr", "/opt"):
        assert system not in paths
    assert ["z", "/etc/kiosk/credentials", "0750", "root", "kiosk", "-"] in lines
    assert ["z", "/tmp/hmac.secret", "0440", "root", "kiosk", "-"] in lines  # the file alone
    folders = [p for kind, p, *_ in lines if kind == "d" or not Path(p).suffix]
    assert folders == ["/etc/kiosk", "/etc/kiosk/credentials"]


def test_verify_catches_a_mistyped_key(tmp_path):
    unit = tmp_path / "bad.service"
    unit.write_text(f"[Service]\nType=notify\nExecStart=/usr/bin/true run\nWatchdogSecs=30\n")
    with pytest.raises(InstallVerifyFailed, match="WatchdogSecs"):
        install.verify_units([unit])


def test_serial_devices_add_the_dialout_group(tmp_path):
    cfg = kconfig.from_dict({"devices": {"id_card": {"driver": "serial", "options": {"port": "/dev/ttyUSB0"}}}})
    opts = install.InstallOptions(root=tmp_path, config_source=tmp_path / "x")
    assert "dialout" in install.service_unit(cfg, opts).split("SupplementaryGroups=")[1].splitlines()[0]
    assert "m kiosk dialout" in install.sysusers(opts, cfg)
    assert install.usb_devices(cfg) == []
    assert "audio" not in install.sysusers(opts, cfg)  # the demo's simulated speaker needs no sound card


def test_a_real_speaker_adds_the_audio_group(tmp_path):
    cfg = kconfig.from_dict({"devices": {"speaker": {"driver": "sdl"}}})
    opts = install.InstallOptions(root=tmp_path, config_source=tmp_path / "x")
    assert "audio" in install.service_unit(cfg, opts).split("SupplementaryGroups=")[1].splitlines()[0].split()
    assert "m kiosk audio" in install.sysusers(opts, cfg)
