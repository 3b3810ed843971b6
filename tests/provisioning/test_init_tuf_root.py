"""kiosk-provision init --tuf-root: the repository's root is checked, placed beside the config and named in it."""
import subprocess
import sys

from kiosk import config as kconfig
from provisioning.release.repository import Publisher


def _init(*argv):
    return subprocess.run([sys.executable, "-m", "provisioning.cli", "init", *map(str, argv)], capture_output=True,
                          text=True, timeout=60)


def test_the_root_is_copied_beside_the_config_and_named_in_it(tmp_path):
    repo = tmp_path / "repo"
    Publisher.init(repo, tmp_path / "keys")
    target = tmp_path / "etc" / "kiosk.toml"
    proc = _init("--config", target, "--tuf-root", repo / "metadata" / "root.json",
                 "--update-repo", "https://updates.example/kiosk/")
    assert proc.returncode == 0, proc.stderr
    cfg = kconfig.load(target)
    placed = tmp_path / "etc" / "tuf-root.json"
    assert cfg.update.tuf_root == str(placed) and cfg.update.repo == "https://updates.example/kiosk"
    assert placed.read_bytes() == (repo / "metadata" / "root.json").read_bytes()
    assert placed.stat().st_mode & 0o777 == 0o644


def test_a_file_that_is_not_a_self_signed_root_is_refused_and_nothing_is_written(tmp_path):
    repo = tmp_path / "repo"
    Publisher.init(repo, tmp_path / "keys")
    target = tmp_path / "etc" / "kiosk.toml"
    for bad, words in ((repo / "metadata" / "timestamp.json", "not a root"), (tmp_path / "keys" / "root.pem", "not TUF")):
        proc = _init("--config", target, "--tuf-root", bad)
        assert proc.returncode == 65 and "tuf_root_invalid" in proc.stderr and words in proc.stderr
    tampered = tmp_path / "tampered.json"
    tampered.write_text((repo / "metadata" / "root.json").read_text().replace('"version": 1', '"version": 2'))
    proc = _init("--config", target, "--tuf-root", tampered)
    assert proc.returncode == 65 and "not signed by its own root keys" in proc.stderr
    assert not (tmp_path / "etc").exists()
