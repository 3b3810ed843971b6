"""kiosk-release init/publish/rollout/halt: a TUF repository written with python-tuf's Metadata API, checked with it."""
import hashlib
import json
import os

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root

from provisioning.release.manifest import Manifest
from provisioning.release.repository import Publisher, PublishRefused
from release_fixtures import ok, tool


def _fake_release(folder, version, extra_wheel=b"dependency bytes"):
    """A manifest and two wheel files (the publisher only hashes and copies them)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name, data in ((f"police_kiosk-{version}-py3-none-any.whl", f"kiosk {version}".encode()),
                       ("dep-1.0-py3-none-any.whl", extra_wheel)):
        (folder / name).write_bytes(data)
        wheels.append({"file": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    manifest = Manifest.from_dict({"version": version, "requires_python": ">=3.11", "wheels": wheels,
                                   "built_at": "2026-01-01T00:00:00+00:00", "min_from_version": None})
    path = folder / manifest.file_name
    path.write_bytes(manifest.to_json())
    return path


def _signed(repo, role):
    """The newest metadata of ``role``, verified against the repository's root."""
    root = Metadata.from_file(str(repo / "metadata" / "root.json"))
    if role == "timestamp":
        md = Metadata.from_file(str(repo / "metadata" / "timestamp.json"))
    else:
        ts = _signed(repo, "timestamp")
        version = ts.signed.snapshot_meta.version if role == "snapshot" else _signed(
            repo, "snapshot").signed.meta["targets.json"].version
        md = Metadata.from_file(str(repo / "metadata" / f"{version}.{role}.json"))
    root.signed.verify_delegate(role, md.signed_bytes, md.signatures)
    return md


def test_init_creates_four_ed25519_keys_and_a_self_signed_root(tmp_path):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    ok(tool("kiosk-release", "init", "--repo", repo, "--keys", keys, "--expires-days", "30"))
    assert sorted(p.name for p in keys.iterdir()) == ["root.pem", "snapshot.pem", "targets.pem", "timestamp.pem"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in keys.iterdir())
    root = Metadata.from_file(str(repo / "metadata" / "root.json"))
    assert isinstance(root.signed, Root) and root.signed.consistent_snapshot
    assert {k.keytype for k in root.signed.keys.values()} == {"ed25519"}
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    assert (repo / "metadata" / "1.root.json").read_bytes() == (repo / "metadata" / "root.json").read_bytes()
    assert _signed(repo, "targets").signed.targets == {}
    again = tool("kiosk-release", "init", "--repo", repo, "--keys", tmp_path / "other")
    assert again.returncode != 0 and "already" in again.stderr


def test_publish_rollout_and_halt_re_sign_the_custom_metadata(tmp_path):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    ok(tool("kiosk-release", "init", "--repo", repo, "--keys", keys))
    manifest = _fake_release(tmp_path / "out", "2.0.0")
    ok(tool("kiosk-release", "publish", "--repo", repo, "--keys", keys, manifest, "--rollout", "10"))
    targets = _signed(repo, "targets")
    entry = targets.signed.targets["releases/police-kiosk-2.0.0.json"]
    assert entry.custom == {"version": "2.0.0", "rollout_percent": 10, "halted": False}
    for w in json.loads(manifest.read_text())["wheels"]:
        info = targets.signed.targets[f"wheels/{w['sha256']}/{w['file']}"]
        assert info.hashes == {"sha256": w["sha256"]} and info.length == w["size"]
        # consistent snapshots: the file is stored under its hash-prefixed name
        assert (repo / "targets" / "wheels" / w["sha256"] / f"{w['sha256']}.{w['file']}").is_file()
    version_before = _signed(repo, "timestamp").signed.version
    ok(tool("kiosk-release", "rollout", "--repo", repo, "--keys", keys, "--version", "2.0.0", "--percent", "50"))
    assert _signed(repo, "targets").signed.targets["releases/police-kiosk-2.0.0.json"].custom["rollout_percent"] == 50
    ok(tool("kiosk-release", "halt", "--repo", repo, "--keys", keys, "--version", "2.0.0"))
    assert _signed(repo, "targets").signed.targets["releases/police-kiosk-2.0.0.json"].custom == {
        "version": "2.0.0", "rollout_percent": 0, "halted": True}
    assert _signed(repo, "timestamp").signed.version == version_before + 2
    resumed = tool("kiosk-release", "rollout", "--repo", repo, "--keys", keys, "--version", "2.0.0", "--percent", "5")
    assert resumed.returncode != 0 and "halted" in resumed.stderr
    listed = json.loads(ok(tool("kiosk-release", "list", "--repo", repo, "--keys", keys, "--json")).stdout)
    assert listed == [{"version": "2.0.0", "rollout_percent": 0, "halted": True,
                       "path": "releases/police-kiosk-2.0.0.json"}]


def test_publish_refuses_a_wheel_that_is_not_the_one_the_manifest_names(tmp_path):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    Publisher.init(repo, keys)
    manifest = _fake_release(tmp_path / "out", "2.0.0")
    (tmp_path / "out" / "dep-1.0-py3-none-any.whl").write_bytes(b"dependency bytez")  # same size, other bytes
    before = sorted(p.name for p in (repo / "metadata").iterdir())
    with pytest.raises(PublishRefused, match="not the file the manifest names"):
        Publisher(repo, keys).publish(manifest)
    assert sorted(p.name for p in (repo / "metadata").iterdir()) == before


def test_a_version_is_published_once_and_keys_of_another_repository_are_refused(tmp_path):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    Publisher.init(repo, keys)
    manifest = _fake_release(tmp_path / "out", "2.0.0")
    Publisher(repo, keys).publish(manifest)
    with pytest.raises(PublishRefused, match="never reused"):
        Publisher(repo, keys).publish(manifest)
    Publisher.init(tmp_path / "other-repo", tmp_path / "other-keys")
    with pytest.raises(PublishRefused, match="not one the repository's root trusts"):
        Publisher(repo, tmp_path / "other-keys")
    bad = tool("kiosk-release", "publish", "--repo", repo, "--keys", keys, tmp_path / "out" / "missing.json")
    assert bad.returncode == 65 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr


def test_a_timestamp_signed_by_a_stranger_does_not_verify(tmp_path):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    publisher = Publisher.init(repo, keys)
    publisher.resign_timestamp(publisher.timestamp.signed.expires, signer=CryptoSigner.generate_ed25519())
    with pytest.raises(UnsignedMetadataError, match="signed by 0/1 keys"):
        _signed(repo, "timestamp")
    assert os.stat(keys).st_mode & 0o777 == 0o700
