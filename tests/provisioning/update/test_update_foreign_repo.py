"""A repository made by another TUF publisher, without consistent snapshots, serves a kiosk just as well."""
import hashlib
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from provisioning.release.manifest import Manifest
from release_fixtures import update, write_config


def _plain_repository(repo, version):
    """Top-level roles only, consistent_snapshot false: files under their plain names, metadata unversioned."""
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    signers = {role: CryptoSigner.generate_ed25519() for role in ("root", "targets", "snapshot", "timestamp")}
    root = Root(expires=expires, consistent_snapshot=False)
    for role, signer in signers.items():
        root.add_key(signer.public_key, role)
    wheel = f"police_kiosk-{version}-py3-none-any.whl".encode()
    sha = hashlib.sha256(wheel).hexdigest()
    manifest = Manifest.from_dict({"version": version, "requires_python": ">=3.11", "min_from_version": None,
                                   "built_at": "2026-01-01T00:00:00+00:00", "wheels": [
                                       {"file": wheel.decode(), "sha256": sha, "size": len(wheel)}]}).to_json()
    (repo / "targets" / "releases").mkdir(parents=True)
    (repo / "targets" / "releases" / f"police-kiosk-{version}.json").write_bytes(manifest)
    targets = Targets(expires=expires)
    entry = TargetFile.from_data(f"releases/police-kiosk-{version}.json", manifest)
    entry.unrecognized_fields["custom"] = {"version": version, "rollout_percent": 100, "halted": False}
    targets.targets[entry.path] = entry
    (repo / "metadata").mkdir()
    serializer = JSONSerializer(compact=True)
    documents = {"root": Metadata(root), "targets": Metadata(targets),
                 "snapshot": Metadata(Snapshot(expires=expires, meta={"targets.json": MetaFile(1)})),
                 "timestamp": Metadata(Timestamp(expires=expires, snapshot_meta=MetaFile(1)))}
    for role, md in documents.items():
        md.sign(signers[role])
        (repo / "metadata" / f"{role}.json").write_bytes(md.to_bytes(serializer))
    (repo / "metadata" / "1.root.json").write_bytes(documents["root"].to_bytes(serializer))
    return repo / "metadata" / "root.json"


def test_a_repository_without_consistent_snapshots_is_read_by_the_same_client(tmp_path, serve_repo):
    root_file = _plain_repository(tmp_path / "repo", "5.0.0")
    server = serve_repo(tmp_path / "repo")
    config = write_config(tmp_path / "kiosk.toml", tmp_path / "state", server.url)
    proc, answer = update("check", config, "--root", tmp_path / "root", "--tuf-root", root_file)
    assert proc.returncode == 0, proc.stderr
    assert answer == {"installed": None, "offered": "5.0.0", "in_rollout": True, "bad_versions": []}
    paths = [p for p, status in server.requests if status == 200]
    assert "/metadata/timestamp.json" in paths and "/metadata/snapshot.json" in paths  # unversioned names
    assert "/targets/releases/police-kiosk-5.0.0.json" in paths  # no hash prefix on the manifest's file
