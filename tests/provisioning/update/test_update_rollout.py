"""The rollout rule and the choice of release: a pure function of the signed list, the installed version and the bad list."""
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.release.manifest import ManifestInvalid
from provisioning.update.rollout import (OfferedRelease, bucket, candidates, in_rollout, is_downgrade_only,
                                         parse_release_entry, skipped_as_bad)


def _rel(version, percent=100, halted=False):
    return OfferedRelease(version, percent, halted, f"releases/police-kiosk-{version}.json")


def test_the_bucket_is_the_big_endian_sha256_of_the_terminal_id_mod_100():
    for terminal in ("JN-LX-0042", "JN-DEMO-0001", "济南-1"):
        expected = int(hashlib.sha256(terminal.encode("utf-8")).hexdigest(), 16) % 100
        assert bucket(terminal) == expected
        assert in_rollout(terminal, expected + 1) and not in_rollout(terminal, expected)
        assert not in_rollout(terminal, 100, halted=True)


@given(st.text(min_size=1, max_size=32), st.integers(0, 100), st.integers(0, 100))
def test_raising_the_percentage_only_adds_terminals(terminal, low, high):
    low, high = sorted((low, high))
    assert not (in_rollout(terminal, low) and not in_rollout(terminal, high))
    assert in_rollout(terminal, 100) and not in_rollout(terminal, 0)


def test_candidates_are_newer_not_halted_not_bad_newest_first():
    listed = [_rel("1.0.0"), _rel("1.1.0", halted=True), _rel("1.2.0"), _rel("1.10.0"), _rel("0.9.0")]
    assert [r.version for r in candidates(listed, "1.0.0")] == ["1.10.0", "1.2.0"]
    assert [r.version for r in candidates(listed, None, bad_versions=["1.10.0"])] == ["1.2.0", "1.0.0", "0.9.0"]
    assert skipped_as_bad(listed, "1.2.0", ["1.10.0"]) == "1.10.0"
    assert skipped_as_bad(listed, "1.2.0", []) is None


def test_only_a_repository_that_forgot_the_installed_release_and_offers_older_ones_is_a_downgrade():
    assert is_downgrade_only([_rel("1.0.0")], "1.1.0")
    assert not is_downgrade_only([_rel("1.0.0"), _rel("1.1.0", 0, halted=True)], "1.1.0")  # halted stays listed
    assert not is_downgrade_only([_rel("1.0.0"), _rel("1.2.0")], "1.1.0")
    assert not is_downgrade_only([], "1.1.0") and not is_downgrade_only([_rel("1.0.0")], None)


def test_a_release_entry_must_agree_with_its_path():
    entry = parse_release_entry("releases/police-kiosk-1.2.0.json",
                                {"version": "1.2.0", "rollout_percent": 10, "halted": False})
    assert (entry.version, entry.rollout_percent, entry.halted) == ("1.2.0", 10, False)
    for custom in ({"version": "1.3.0", "rollout_percent": 10, "halted": False},
                   {"version": "1.2.0", "rollout_percent": 101, "halted": False},
                   {"version": "1.2.0", "rollout_percent": 10, "halted": "no"},
                   {"version": "1.2.0", "rollout_percent": True, "halted": False}, None):
        with pytest.raises(ManifestInvalid):
            parse_release_entry("releases/police-kiosk-1.2.0.json", custom)


@given(st.text(max_size=40), st.dictionaries(st.sampled_from(["version", "rollout_percent", "halted", "x"]),
                                             st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=8)))
def test_any_custom_metadata_is_an_entry_or_a_clear_refusal(path, custom):
    try:
        entry = parse_release_entry(path, custom)
    except ManifestInvalid as err:
        assert err.detail
    else:
        assert 0 <= entry.rollout_percent <= 100 and path.endswith(f"{entry.version}.json")
