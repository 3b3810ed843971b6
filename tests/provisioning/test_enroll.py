"""`kiosk-provision enroll` and `rotate-secret` against a live simulator (plain HTTP and mutual TLS).

The simulator runs in this process on free loopback ports and is stopped here; the command
runs through its real entry point (``provisioning.cli.main``), and what it leaves on disk
(files, modes, the rewritten config) is checked, including that a failure leaves nothing.
"""
from __future__ import annotations

import grp
import os
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Iterator

import pytest
import requests

from kiosk import config as kconfig
from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.errors import SignatureError
from kiosk.services import signing
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.server import SimServer, serve
from provisioning.cli import main

CONFIG = """profile = "demo"

[terminal]
id = "{tid}"
name = "测试终端"

[paths]
state_dir = "{state}"

[backend]
url = "http://127.0.0.1:9"
hmac_secret = "demo-terminal-secret-not-for-production"
"""


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0, tls=True)
    try:
        yield server
    finally:
        server.stop()


def _config(tmp_path: Path, tid: str) -> Path:
    path = tmp_path / "etc" / "kiosk.toml"
    path.parent.mkdir(parents=True)
    path.write_text(CONFIG.format(tid=tid, state=tmp_path / "state"), encoding="utf-8")
    path.chmod(0o640)
    return path


def _code(sim: SimServer, tid: str) -> str:
    verify: str | bool = True
    if sim.tls:
        ca = Path(tempfile.mkdtemp()) / "ca.pem"
        ca.write_bytes(sim.ca_pem)
        verify = str(ca)
    r = requests.post(f"{sim.enroll_url}/api/v1/sim/enrollment-codes", json={"terminal_id": tid}, verify=verify,
                      timeout=5)
    return str(r.json()["code"])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_enroll_writes_private_credentials_and_points_the_config_at_them(sim: SimServer, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, "JN-P-0001")
    assert main(["enroll", "--backend", sim.url, "--code", _code(sim, "JN-P-0001"), "--config", str(cfg_path)]) == 0
    assert "signed test call with the new credentials: OK" in capsys.readouterr().err
    creds = tmp_path / "etc" / "credentials"
    assert sorted(p.name for p in creds.iterdir()) == ["backend-ca.pem", "hmac.secret", "terminal.crt", "terminal.key"]
    assert _mode(creds) == 0o700 and all(_mode(p) == 0o600 for p in creds.iterdir())
    assert not list(creds.parent.glob(".*"))  # no staging leftovers
    raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    assert "hmac_secret" not in raw["backend"]  # the demo secret is gone
    assert raw["terminal"]["name"] == "测试终端"  # everything else kept
    assert _mode(cfg_path) == 0o640
    cfg = kconfig.load(cfg_path)
    assert cfg.backend.url == sim.url and cfg.backend.public_key == DEMO_BACKEND_PUBLIC_KEY
    assert Path(cfg.backend.hmac_secret_file) == creds / "hmac.secret"
    assert cfg.backend.secret() == (creds / "hmac.secret").read_bytes()
    assert (creds / "backend-ca.pem").read_bytes() == sim.ca_pem
    assert BackendClient.from_config(cfg).health()["status"] == "ok"


def test_a_code_used_twice_fails_clearly_and_changes_nothing(sim: SimServer, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = _code(sim, "JN-P-0002")
    first = _config(tmp_path / "a", "JN-P-0002")
    assert main(["enroll", "--backend", sim.url, "--code", code, "--config", str(first)]) == 0
    second = _config(tmp_path / "b", "JN-P-0002")
    before = second.read_bytes()
    capsys.readouterr()
    assert main(["enroll", "--backend", sim.url, "--code", code, "--config", str(second)]) == 77
    err = capsys.readouterr().err
    assert "enrollment_code_used" in err and "ask the operator for a new enrollment code" in err
    assert second.read_bytes() == before
    assert sorted(p.name for p in second.parent.iterdir()) == ["kiosk.toml"]


def test_backend_down_during_enrollment_leaves_nothing_half_installed(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, "JN-P-0003")
    before = cfg_path.read_bytes()
    with socketless_port() as port:
        rc = main(["enroll", "--backend", f"http://127.0.0.1:{port}", "--code", "AAAAAA-BBBBBB", "--config",
                   str(cfg_path)])
    assert rc == 69
    assert "backend_unavailable" in capsys.readouterr().err
    assert cfg_path.read_bytes() == before
    assert sorted(p.name for p in cfg_path.parent.iterdir()) == ["kiosk.toml"]


def test_a_wrong_code_is_refused_before_anything_is_written(sim: SimServer, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path, "JN-P-0004")
    assert main(["enroll", "--backend", sim.url, "--code", "WRONG-CODE", "--config", str(cfg_path)]) == 77
    assert sorted(p.name for p in cfg_path.parent.iterdir()) == ["kiosk.toml"]


def test_group_readable_credentials_with_group(sim: SimServer, tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    cfg_path = _config(tmp_path, "JN-P-0005")
    assert main(["enroll", "--backend", sim.url, "--code", _code(sim, "JN-P-0005"), "--config", str(cfg_path),
                 "--group", group, "--no-verify"]) == 0
    creds = tmp_path / "etc" / "credentials"
    assert _mode(creds) == 0o750 and all(_mode(p) == 0o640 for p in creds.iterdir())
    assert all(p.stat().st_gid == os.getgid() for p in creds.iterdir())
    assert main(["enroll", "--backend", sim.url, "--code", _code(sim, "JN-P-0005"), "--config", str(cfg_path),
                 "--group", "no-such-group-here"]) == 73


def _ca(sim: SimServer, tmp_path: Path) -> str:
    path = tmp_path / "backend-ca-from-the-installation-media.pem"
    path.write_bytes(sim.ca_pem)
    return str(path)


def test_enroll_over_https_without_a_ca_file_is_refused_and_writes_nothing(tls_sim: SimServer, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, "JN-P-0014")
    before = cfg_path.read_bytes()
    code = _code(tls_sim, "JN-P-0014")
    assert main(["enroll", "--backend", tls_sim.enroll_url, "--code", code, "--config", str(cfg_path)]) == 78
    assert "--ca-file" in capsys.readouterr().err
    assert cfg_path.read_bytes() == before and sorted(p.name for p in cfg_path.parent.iterdir()) == ["kiosk.toml"]
    # The code never reached the backend: with the CA it still enrolls.
    assert main(["enroll", "--backend", tls_sim.enroll_url, "--code", code, "--config", str(cfg_path),
                 "--ca-file", _ca(tls_sim, tmp_path), "--no-verify"]) == 0


def test_enroll_takes_the_ca_the_config_already_pins(tls_sim: SimServer, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path, "JN-P-0015")
    cfg_path.write_text(cfg_path.read_text() + f'ca_file = "{_ca(tls_sim, tmp_path)}"\n', encoding="utf-8")
    assert main(["enroll", "--backend", tls_sim.enroll_url, "--code", _code(tls_sim, "JN-P-0015"),
                 "--config", str(cfg_path)]) == 0


def test_a_production_terminal_enrolls_from_its_unenrolled_config_but_never_trusts_the_demo_key(
        tls_sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = tmp_path / "etc" / "kiosk.toml"
    cfg_path.parent.mkdir()
    devices = "".join(f"[devices.{name}]\nenabled = false\n" for name in kconfig.DEVICE_NAMES)
    cfg_path.write_text(f'profile = "production"\n[terminal]\nid = "JN-P-0016"\n[backend]\n'
                        f'url = "{tls_sim.url}"\n{devices}', encoding="utf-8")  # as `init` writes it
    before = cfg_path.read_bytes()
    assert main(["enroll", "--backend", tls_sim.enroll_url, "--code", _code(tls_sim, "JN-P-0016"),
                 "--config", str(cfg_path), "--ca-file", _ca(tls_sim, tmp_path)]) == 78
    # Read and enrolled; then refused because the simulator's document key is the public demo one.
    assert "backend.public_key" in capsys.readouterr().err
    assert cfg_path.read_bytes() == before and sorted(p.name for p in cfg_path.parent.iterdir()) == ["kiosk.toml"]


def test_enroll_over_mutual_tls_and_rotate_the_secret(tls_sim: SimServer, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path, "JN-P-0010")
    assert main(["enroll", "--backend", tls_sim.enroll_url, "--code", _code(tls_sim, "JN-P-0010"),
                 "--config", str(cfg_path), "--ca-file", _ca(tls_sim, tmp_path)]) == 0
    cfg = kconfig.load(cfg_path)
    assert cfg.backend.url == tls_sim.url != tls_sim.enroll_url  # the mutual-TLS listener from the answer
    assert cfg.backend.client_cert_file and cfg.backend.client_key_file and cfg.backend.ca_file
    old = cfg.backend.secret()
    assert main(["rotate-secret", "--config", str(cfg_path)]) == 0
    new = kconfig.load(cfg_path).backend.secret()
    assert new != old and not Path(cfg.backend.hmac_secret_file + ".pending").exists()
    assert _mode(Path(cfg.backend.hmac_secret_file)) == 0o600
    assert BackendClient.from_config(kconfig.load(cfg_path)).health()["status"] == "ok"
    stale = BackendClient.from_config(cfg)
    stale.set_secret(old)
    with pytest.raises(SignatureError):  # the old secret no longer passes (its refusal is signed with the new)
        stale.heartbeat({"seq": 1, "sent_at": "2026-01-01T00:00:00+00:00", "app_version": "t", "uptime_s": 0,
                         "devices": {}})


def test_a_running_kiosk_signs_with_the_rotated_secret_without_a_restart(sim: SimServer, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path, "JN-P-0013")
    assert main(["enroll", "--backend", sim.url, "--code", _code(sim, "JN-P-0013"), "--config", str(cfg_path)]) == 0
    running = BackendClient.from_config(kconfig.load(cfg_path))  # built at start-up, as `kiosk run` does
    beat = {"seq": 1, "sent_at": "2026-01-01T00:00:00+00:00", "app_version": "t", "uptime_s": 0, "devices": {}}
    running.heartbeat(beat)
    assert main(["rotate-secret", "--config", str(cfg_path)]) == 0  # the technician, while the kiosk runs
    # The old secret is refused from now on, so this passes only if the client reread the file.
    running.heartbeat({**beat, "seq": 2})
    assert running.health()["status"] == "ok"


def test_an_interrupted_rotation_is_finished_by_the_next_run(sim: SimServer, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path, "JN-P-0011")
    assert main(["enroll", "--backend", sim.url, "--code", _code(sim, "JN-P-0011"), "--config", str(cfg_path)]) == 0
    cfg = kconfig.load(cfg_path)
    old = cfg.backend.secret()
    # The power went out after the new secret was saved as pending, before the confirmation.
    new = BackendClient.from_config(cfg).rotate_secret()
    Path(cfg.backend.hmac_secret_file + ".pending").write_text(new)
    assert BackendClient.from_config(cfg).health()["status"] == "ok"  # the old secret still works meanwhile
    assert main(["rotate-secret", "--config", str(cfg_path)]) == 0
    assert kconfig.load(cfg_path).backend.secret() == new.encode() != old
    parts = signing.RequestParts("GET", signing.host_header(sim.url), "/api/v1/health")
    headers = {"X-Terminal-Id": "JN-P-0011", "Host": parts.host, **signing.sign_request(old, parts)}
    r = requests.get(f"{sim.url}/api/v1/health", headers=headers, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"


def test_rotate_secret_on_a_terminal_never_enrolled_is_a_clear_error(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, "JN-P-0012")
    assert main(["rotate-secret", "--config", str(cfg_path)]) == 73
    assert "not enrolled" in capsys.readouterr().err


class socketless_port:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_enrolling_against_the_api_port_says_to_use_the_enrollment_port(tls_sim: SimServer, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, "JN-P-0031")
    before = cfg_path.read_bytes()
    code = _code(tls_sim, "JN-P-0031")
    ca = _ca(tls_sim, tmp_path)
    assert main(["enroll", "--backend", tls_sim.url, "--code", code, "--config", str(cfg_path), "--ca-file", ca]) == 69
    err = capsys.readouterr().err
    assert "backend_tls_failed" in err and "this is the API port" in err.replace("If this", "this")
    assert "enrol against the enrollment port" in err
    assert cfg_path.read_bytes() == before
    # the code was not spent by the refused handshake
    assert main(["enroll", "--backend", tls_sim.enroll_url, "--code", code, "--config", str(cfg_path),
                 "--ca-file", ca, "--no-verify"]) == 0


def test_backend_sim_tls_tells_the_operator_how_to_enrol_and_where_the_fleet_page_is(tls_sim: SimServer,
                                                                                    tmp_path: Path) -> None:
    from kiosk.backend_sim.server import operator_guide

    guide = operator_guide(tls_sim, str(tmp_path / "sim.sqlite3"))
    ca = tmp_path / "backend-sim-ca.pem"
    assert ca.read_bytes() == tls_sim.ca_pem
    assert f"CA certificate for technicians (--ca-file): {ca}" in guide
    assert f"{tls_sim.enroll_url}/api/v1/sim/enrollment-codes" in guide
    assert f"kiosk-provision enroll --backend {tls_sim.enroll_url} --code CODE --ca-file {ca}" in guide
    assert f"fleet page: {tls_sim.enroll_url}/fleet" in guide
    # the printed curl line really issues a code
    r = requests.post(f"{tls_sim.enroll_url}/api/v1/sim/enrollment-codes", json={"terminal_id": "JN-P-0032"},
                      verify=str(ca), timeout=5)
    assert r.status_code == 200 and r.json()["code"]
    page = requests.get(f"{tls_sim.enroll_url}/fleet", verify=str(ca), timeout=5)
    assert page.status_code == 200 and "<table" in page.text
