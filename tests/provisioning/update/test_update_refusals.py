"""What apply refuses, with nothing switched: tampered wheels, foreign signatures, expired or rolled-back
metadata, a downgrade, no trust anchor; and what it only declines (rollout, halted, bad versions)."""
import hashlib
import os
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from securesystemslib.signer import CryptoSigner

from provisioning.release.repository import Publisher
from release_fixtures import CODE_ONLY, FULL, RepoServer, update, write_config

# The session's first use builds every release and installs one: minutes on a cold pip cache.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _nothing_switched(terminal, cached_before):
    assert terminal.current == f"releases/{FULL}"
    assert terminal.releases() == [FULL]
    assert terminal.cached_wheels() == cached_before  # nothing unverified was kept
    downloads = terminal.state / "update" / "downloads"
    assert not downloads.exists() or not any(p.suffix == ".part" for p in downloads.iterdir())


def _replace(path, data):
    """Put other bytes at ``path`` (a new file renamed over it, as a server operator's copy would)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.mark.parametrize("tamper", ["same_length", "longer", "shorter"])
def test_a_wheel_altered_after_signing_is_refused(terminal, wheelhouse, tamper):
    terminal.publish(CODE_ONLY)
    new = wheelhouse.project_wheel(CODE_ONLY)
    stored = terminal.target_file(f"wheels/{new['sha256']}/{new['file']}", new["sha256"])
    data = bytearray(stored.read_bytes())
    if tamper == "same_length":
        data[len(data) // 2] ^= 0xFF
    elif tamper == "longer":
        data += b"# one more line\n"
    else:
        data = data[:-100]
    _replace(stored, bytes(data))
    cached = terminal.cached_wheels()
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("refused", CODE_ONLY, "verification_failed")
    _nothing_switched(terminal, cached)


def test_metadata_signed_by_a_wrong_key_is_refused(terminal):
    terminal.publish(CODE_ONLY)
    publisher = Publisher(terminal.repo, terminal.keys)
    publisher.resign_timestamp(publisher.timestamp.signed.expires, signer=CryptoSigner.generate_ed25519())
    cached = terminal.cached_wheels()
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["reason"]) == ("refused", "verification_failed")
    assert "timestamp" in answer["detail"]
    assert terminal.server.wheel_requests() == []  # refused before any target was fetched
    _nothing_switched(terminal, cached)


def test_an_expired_timestamp_is_refused(terminal):
    terminal.publish(CODE_ONLY)
    publisher = Publisher(terminal.repo, terminal.keys)
    publisher.resign_timestamp(datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1))
    cached = terminal.cached_wheels()
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["reason"]) == ("refused", "expired_metadata")
    assert terminal.server.wheel_requests() == []
    _nothing_switched(terminal, cached)


def test_a_repository_replaced_by_an_older_snapshot_of_itself_is_refused(terminal, tmp_path):
    older = tmp_path / "older-metadata"
    shutil.copytree(terminal.repo / "metadata", older)  # the repository as it was before CODE_ONLY
    terminal.publish(CODE_ONLY)
    proc, seen = terminal.check()
    assert proc.returncode == 0 and seen["offered"] == CODE_ONLY  # the terminal now trusts the newer metadata
    shutil.rmtree(terminal.repo / "metadata")
    shutil.copytree(older, terminal.repo / "metadata")  # a mirror serving yesterday's repository
    cached = terminal.cached_wheels()
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["reason"]) == ("refused", "rollback_attack")
    _nothing_switched(terminal, cached)


def test_an_older_release_offered_again_is_refused_even_to_a_terminal_that_lost_its_metadata(terminal):
    # The terminal runs CODE_ONLY; its state folder was restored from a backup without the TUF
    # metadata, so ngclient starts again from the provisioned root and cannot see the rollback.
    # The repository (validly signed, unexpired) lists only FULL.
    shutil.rmtree(terminal.root)
    terminal.mark_installed(CODE_ONLY)
    shutil.rmtree(terminal.state / "update" / "tuf")
    proc, answer = terminal.apply("--tuf-root", terminal.repo / "metadata" / "root.json")
    assert proc.returncode == 1
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("refused", FULL, "rollback_attack")
    assert terminal.current == f"releases/{CODE_ONLY}" and terminal.releases() == [CODE_ONLY]
    assert terminal.server.wheel_requests() == []


def test_a_halted_release_that_is_installed_is_no_rollback(terminal):
    terminal.publish(CODE_ONLY)
    Publisher(terminal.repo, terminal.keys).halt(CODE_ONLY)
    shutil.rmtree(terminal.root)
    terminal.mark_installed(CODE_ONLY)
    proc, answer = terminal.apply()
    assert proc.returncode == 0
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("up_to_date", CODE_ONLY, None)


def _bucket(terminal_id):
    return int(hashlib.sha256(terminal_id.encode("utf-8")).hexdigest(), 16) % 100


def test_a_terminal_outside_the_rollout_waits_and_joins_when_the_percentage_covers_it(terminal):
    share = _bucket("JN-TEST-0001")  # the terminal's own bucket: "below the percentage" is false
    terminal.publish(CODE_ONLY, "--rollout", str(share))
    proc, answer = terminal.apply()
    assert proc.returncode == 0
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("not_in_rollout", CODE_ONLY, None)
    assert terminal.server.wheel_requests() == [] and terminal.current == f"releases/{FULL}"
    proc, seen = terminal.check()
    assert seen == {"installed": FULL, "offered": CODE_ONLY, "in_rollout": False, "bad_versions": []}
    Publisher(terminal.repo, terminal.keys).set_rollout(CODE_ONLY, share + 1)
    proc, seen = terminal.check()
    assert seen["in_rollout"] is True


def test_a_halted_release_is_not_offered(terminal):
    terminal.publish(CODE_ONLY)
    Publisher(terminal.repo, terminal.keys).halt(CODE_ONLY)
    proc, answer = terminal.apply()
    assert proc.returncode == 0 and (answer["outcome"], answer["version"]) == ("up_to_date", FULL)
    assert terminal.server.wheel_requests() == []


def test_a_version_marked_bad_on_this_terminal_is_skipped(terminal):
    (terminal.state / "update" / "bad_versions.json").write_text(f'["{CODE_ONLY}"]')
    terminal.publish(CODE_ONLY)
    proc, answer = terminal.apply()
    assert proc.returncode == 0
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("up_to_date", CODE_ONLY, "bad_version")
    proc, seen = terminal.check()
    assert seen == {"installed": FULL, "offered": None, "in_rollout": False, "bad_versions": [CODE_ONLY]}
    assert terminal.server.wheel_requests() == []


def test_without_stored_metadata_or_a_tuf_root_apply_refuses(tmp_path, terminal):
    config = write_config(tmp_path / "fresh.toml", tmp_path / "fresh-state", terminal.server.url)
    proc, answer = update("apply", config, "--root", tmp_path / "fresh-root")
    assert proc.returncode == 1
    assert answer == {"outcome": "refused", "version": None, "reason": "no_tuf_root", "detail": answer["detail"],
                      "downloaded_files": 0, "downloaded_bytes": 0, "timings": {}}
    assert terminal.server.requests == [] and not (tmp_path / "fresh-root").exists()
    proc, answer = update("check", config)
    assert proc.returncode == 1 and answer["error"]["code"] == "no_tuf_root"


def test_a_file_that_is_not_a_root_is_no_trust_anchor(tmp_path, terminal):
    config = write_config(tmp_path / "fresh.toml", tmp_path / "fresh-state", terminal.server.url)
    fake = tmp_path / "root.json"
    fake.write_bytes((terminal.repo / "metadata" / "timestamp.json").read_bytes())
    proc, answer = update("apply", config, "--root", tmp_path / "fresh-root", "--tuf-root", fake)
    assert proc.returncode == 1 and answer["reason"] == "no_tuf_root"
    assert not (tmp_path / "fresh-state" / "update" / "tuf" / "root.json").exists()


def test_once_metadata_is_stored_the_tuf_root_flag_is_not_consulted(terminal, tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not a root")
    proc, answer = terminal.check("--tuf-root", garbage)
    assert proc.returncode == 0 and answer["installed"] == FULL


def test_an_unreachable_repository_is_a_download_failure(terminal, tmp_path):
    dead = RepoServer(tmp_path)
    url = dead.url
    dead.stop()  # nothing listens there any more
    config = write_config(tmp_path / "dead.toml", terminal.state, url)
    proc, answer = update("apply", config, "--root", terminal.root)
    assert proc.returncode == 1 and answer["reason"] == "download_failed"
    assert terminal.current == f"releases/{FULL}"
