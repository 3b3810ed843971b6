"""Release folders and the `current` link: complete or removed, switched in one rename; the state folder's records."""
import json
import os

from provisioning.release.manifest import Manifest
from provisioning.update.layout import RELEASE_MARKER, ReleaseLayout, UpdateState


def _manifest(version, sha="ab" * 32):
    return Manifest.from_dict({"version": version, "requires_python": ">=3.11", "built_at": "2026-01-01T00:00:00Z",
                               "min_from_version": None,
                               "wheels": [{"file": f"police_kiosk-{version}-py3-none-any.whl", "sha256": sha,
                                           "size": 10}]})


def test_switching_current_replaces_the_link_in_one_rename(tmp_path):
    layout = ReleaseLayout(tmp_path)
    assert layout.installed_version() is None
    for version in ("1.0.0", "1.0.1"):
        layout.release_dir(version).mkdir(parents=True)
        layout.mark_complete(_manifest(version))
    layout.switch_current("1.0.0")
    inode_before = os.lstat(layout.current).st_ino
    layout.switch_current("1.0.1")
    assert os.readlink(layout.current) == "releases/1.0.1"  # relative: valid wherever the tree is copied
    assert layout.installed_version() == "1.0.1"
    assert os.lstat(layout.current).st_ino != inode_before  # a new link, renamed over the old one
    assert sorted(p.name for p in layout.base.iterdir()) == ["current", "releases"]  # no temporary link left


def test_an_incomplete_release_is_never_switched_to_and_is_removed_on_the_next_run(tmp_path):
    layout = ReleaseLayout(tmp_path)
    for version in ("1.0.0", "1.0.1", "1.0.2"):
        (layout.release_dir(version) / "bin").mkdir(parents=True)
    layout.mark_complete(_manifest("1.0.0"))
    layout.switch_current("1.0.0")
    os.symlink("releases/1.0.2", layout.base / ".current.123.abcd")  # killed between symlink and rename
    try:
        layout.switch_current("1.0.2")
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("switched to a release without its marker")
    assert layout.installed_version() == "1.0.0"
    assert layout.remove_incomplete() == [".current.123.abcd", "1.0.1", "1.0.2"]
    assert os.readlink(layout.current) == "releases/1.0.0"
    assert [p.name for p in layout.releases.iterdir()] == ["1.0.0"]
    assert [m.version for m in layout.complete_manifests()] == ["1.0.0"]
    assert (layout.release_dir("1.0.0") / RELEASE_MARKER).is_file()


def test_a_link_that_names_no_version_counts_as_nothing_installed(tmp_path):
    layout = ReleaseLayout(tmp_path)
    layout.base.mkdir(parents=True)
    os.symlink("releases/not a version", layout.current)
    assert layout.installed_version() is None


def test_bad_versions_and_the_last_outcome_survive_in_the_state_folder(tmp_path):
    state = UpdateState(tmp_path / "update")
    assert state.bad_versions() == () and state.last_outcome() is None
    state.mark_bad("1.0.10")
    state.mark_bad("1.0.9")
    assert state.bad_versions() == ("1.0.9", "1.0.10")
    state.bad_versions_file.write_text("{not json")
    assert state.bad_versions() == ()
    state.record_outcome({"outcome": "refused", "version": "1.0.9", "reason": "selftest_failed", "detail": "x"})
    last = json.loads(state.last_outcome_file.read_text())
    assert set(last) == {"outcome", "version", "reason", "at"} and last["reason"] == "selftest_failed"


def test_pruning_keeps_the_wheels_of_kept_releases(tmp_path):
    state = UpdateState(tmp_path / "update")
    for sha in ("aa", "bb"):
        path = state.wheel_path(sha, "x-1-py3-none-any.whl")
        path.parent.mkdir(parents=True)
        path.write_bytes(b"12345")
    assert state.prune_wheels({"aa"}) == 5
    assert [p.name for p in state.wheels_dir.iterdir()] == ["aa"]
