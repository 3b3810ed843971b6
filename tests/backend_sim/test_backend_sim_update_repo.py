"""The backend simulator serves a TUF repository folder at /updates for the demo, and a kiosk can update from it."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import requests

from kiosk.backend_sim.server import serve
from provisioning.release.manifest import Manifest
from provisioning.release.repository import Publisher


def _tiny_release(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    data = f"kiosk {version}".encode()
    (folder / f"police_kiosk-{version}-py3-none-any.whl").write_bytes(data)
    manifest = Manifest.from_dict({
        "version": version, "requires_python": ">=3.11", "built_at": "2026-01-01T00:00:00+00:00",
        "min_from_version": None, "wheels": [{"file": f"police_kiosk-{version}-py3-none-any.whl",
                                              "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]})
    path = folder / manifest.file_name
    path.write_bytes(manifest.to_json())
    return path


def test_the_simulator_serves_the_repository_files_and_nothing_outside_it(tmp_path):
    repo = tmp_path / "repo"
    Publisher.init(repo, tmp_path / "keys")
    (tmp_path / "secret.txt").write_text("outside the repository")
    with serve("127.0.0.1", 0, update_repo=str(repo)) as sim:
        root = requests.get(f"{sim.url}/updates/metadata/root.json", timeout=10)
        assert root.status_code == 200 and root.content == (repo / "metadata" / "root.json").read_bytes()
        for path in ("/updates/../secret.txt", "/updates/%2e%2e/secret.txt", "/updates/metadata/nothing.json"):
            answer = requests.get(sim.url + path, timeout=10)
            assert answer.status_code == 404 and b"outside" not in answer.content
    with serve("127.0.0.1", 0) as plain:  # without a folder there is no such route
        assert requests.get(f"{plain.url}/updates/metadata/root.json", timeout=10).status_code == 404


def test_a_kiosk_checks_for_updates_against_the_simulator(tmp_path):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    Publisher.init(repo, keys).publish(_tiny_release(tmp_path / "out", "3.0.0"), rollout_percent=100)
    with serve("127.0.0.1", 0, update_repo=str(repo)) as sim:
        config = tmp_path / "kiosk.toml"
        config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[update]\nrepo = "{sim.url}/updates"\n'
                          f'tuf_root = "{repo / "metadata" / "root.json"}"\n')
        proc = subprocess.run([sys.executable, "-m", "provisioning.cli", "update", "check", "--config", str(config),
                               "--root", str(tmp_path / "root"), "--json"], capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"installed": None, "offered": "3.0.0", "in_rollout": True, "bad_versions": []}
