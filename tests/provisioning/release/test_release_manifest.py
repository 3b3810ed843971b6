"""Release manifests: the exact shape is accepted, anything else is refused as a whole (property-tested)."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.release.manifest import Manifest, ManifestInvalid, parse_version, version_of_target_path

SHA = "ab" * 32


def _raw(**changes):
    raw = {"version": "1.2.0", "requires_python": ">=3.11",
           "wheels": [{"file": "police_kiosk-1.2.0-py3-none-any.whl", "sha256": SHA, "size": 1000},
                      {"file": "Kivy-2.3.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                       "sha256": "cd" * 32, "size": 20}],
           "built_at": "2026-01-02T03:04:05+00:00", "min_from_version": None}
    raw.update(changes)
    return raw


def test_a_manifest_round_trips_and_names_its_targets():
    manifest = Manifest.from_dict(_raw())
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.file_name == "police-kiosk-1.2.0.json"
    assert manifest.target_path == "releases/police-kiosk-1.2.0.json"
    assert manifest.project_wheel().target_path == f"wheels/{SHA}/police_kiosk-1.2.0-py3-none-any.whl"
    assert manifest.total_size == 1020
    assert version_of_target_path(manifest.target_path) == "1.2.0"
    assert version_of_target_path("wheels/x/police-kiosk-1.2.0.json") is None


@pytest.mark.parametrize("changes, words", [
    ({"version": "1.2"}, "police_kiosk-1.2-"),  # the project wheel must carry the manifest's version
    ({"version": "01.2.0"}, "normal form"),
    ({"requires_python": "three"}, "requires_python"),
    ({"built_at": "yesterday"}, "built_at"),
    ({"min_from_version": "x"}, "min_from_version"),
    ({"wheels": []}, "non-empty"),
    ({"extra": 1}, "unknown ['extra']"),
    ({"wheels": [{"file": "../../etc/passwd", "sha256": SHA, "size": 1}]}, "wheel's file name"),
    ({"wheels": [{"file": "police_kiosk-1.2.0-py3-none-any.whl", "sha256": SHA.upper(), "size": 1}]}, "hex"),
    ({"wheels": [{"file": "police_kiosk-1.2.0-py3-none-any.whl", "sha256": SHA, "size": True}]}, "size"),
    ({"wheels": [{"file": "police_kiosk-1.2.0-py3-none-any.whl", "sha256": SHA, "size": 1}] * 2}, "twice"),
])
def test_a_manifest_that_is_not_exactly_right_is_refused(changes, words):
    with pytest.raises(ManifestInvalid) as err:
        Manifest.from_dict(_raw(**changes))
    assert words in err.value.detail


def test_min_from_version_says_which_installed_releases_may_update_directly():
    manifest = Manifest.from_dict(_raw(min_from_version="1.1.0"))
    assert manifest.reachable_from(None)  # a first install takes any release
    assert manifest.reachable_from("1.1.0") and manifest.reachable_from("1.1.5")
    assert not manifest.reachable_from("1.0.9")
    assert manifest.python_supported("3.11.2") and not manifest.python_supported("3.10.12")


def test_parse_version_wants_the_normal_form():
    assert str(parse_version("1.0.0.post1")) == "1.0.0.post1"
    for bad in ("1.0.0-post1", "v1", "", None, 1):
        with pytest.raises(ManifestInvalid):
            parse_version(bad)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                     max_size=5), max_leaves=20)


@given(st.one_of(json_values, st.builds(lambda **kw: _raw(**kw), version=json_values, wheels=json_values,
                                        requires_python=json_values, min_from_version=json_values)))
def test_any_json_is_a_manifest_or_a_clear_refusal(raw):
    try:
        manifest = Manifest.from_dict(raw)
    except ManifestInvalid as err:
        assert err.detail
    else:
        assert Manifest.from_json(manifest.to_json()) == manifest


@given(st.binary(max_size=300))
def test_any_bytes_are_a_manifest_or_a_clear_refusal(data):
    with pytest.raises(ManifestInvalid):
        Manifest.from_json(data)


def test_the_bytes_of_a_valid_manifest_parse():
    assert Manifest.from_json(json.dumps(_raw()).encode()).version == "1.2.0"
