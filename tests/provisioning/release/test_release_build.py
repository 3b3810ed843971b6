"""kiosk-release build: every wheel for the kiosk's platform, a manifest that names them by content, and a
code-only release that shares every dependency file with the one before."""
import hashlib
import zipfile

import pytest

from provisioning.release.build import KIOSK_PLATFORM, BuildFailed, Platform, check_platform, stamp_version
from provisioning.release.manifest import ManifestInvalid
from release_fixtures import BROKEN, CODE_ONLY, FULL, tool

# The session's first use builds every release (pyscard and pycups compiled on a cold pip cache).
pytestmark = pytest.mark.timeout(1800)


def test_a_release_holds_the_project_and_every_dependency_named_by_content(wheelhouse):
    manifest = wheelhouse.manifest(FULL)
    assert manifest["version"] == FULL and manifest["requires_python"] == ">=3.11"
    assert manifest["min_from_version"] is None and manifest["built_at"].endswith("+00:00")
    files = {w["file"] for w in manifest["wheels"]}
    for needed in ("police_kiosk-1.0.0-py3-none-any.whl", "tuf-", "pyscard-", "Kivy-", "pycups-"):
        assert any(f.startswith(needed) for f in files), needed
    for w in manifest["wheels"]:
        data = (wheelhouse.dir / w["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == w["sha256"] and len(data) == w["size"]
    # pyscard has no wheel on PyPI: it was compiled here, for this platform
    assert any(f.startswith("pyscard-") and f.endswith("-cp311-cp311-linux_x86_64.whl") for f in files)
    with zipfile.ZipFile(wheelhouse.dir / "police_kiosk-1.0.0-py3-none-any.whl") as zf:
        assert '__version__ = "1.0.0"' in zf.read("kiosk/__init__.py").decode()


def test_a_code_only_release_shares_every_dependency_file(wheelhouse):
    full = {w["file"]: w["sha256"] for w in wheelhouse.manifest(FULL)["wheels"]}
    for version in (CODE_ONLY, BROKEN):
        other = {w["file"]: w["sha256"] for w in wheelhouse.manifest(version)["wheels"]}
        assert set(other.items()) - set(full.items()) == {(f"police_kiosk-{version}-py3-none-any.whl",
                                                           wheelhouse.project_wheel(version)["sha256"])}
        assert set(full.items()) - set(other.items()) == {(f"police_kiosk-{FULL}-py3-none-any.whl",
                                                          wheelhouse.project_wheel(FULL)["sha256"])}


def test_a_version_is_built_once(wheelhouse):
    with wheelhouse.building():  # no other xdist worker adds a release meanwhile
        before = sorted(p.name for p in wheelhouse.dir.iterdir())
        proc = tool("kiosk-release", "build", "--out", wheelhouse.dir, "--version", FULL)
        after = sorted(p.name for p in wheelhouse.dir.iterdir())
    assert proc.returncode == 70 and "never reused" in proc.stderr
    assert after == before


def test_only_the_kiosks_platform_builds_releases():
    check_platform(KIOSK_PLATFORM)
    for other in (Platform("CPython", "3.12", "x86_64", "Linux"), Platform("CPython", "3.11", "aarch64", "Linux"),
                  Platform("PyPy", "3.11", "x86_64", "Linux")):
        with pytest.raises(BuildFailed, match="kiosk's platform"):
            check_platform(other)


def test_the_version_is_stamped_in_normal_form_only(tmp_path):
    (tmp_path / "kiosk").mkdir()
    init = tmp_path / "kiosk" / "__init__.py"
    init.write_text('"""Doc."""\n__version__ = "0.1.0"\n')
    assert stamp_version(tmp_path, None) == "0.1.0"
    assert stamp_version(tmp_path, "2.0.0.post1") == "2.0.0.post1"
    assert init.read_text() == '"""Doc."""\n__version__ = "2.0.0.post1"\n'
    for bad in ("v2", "2.0.0-rc1", "latest"):
        with pytest.raises(ManifestInvalid):
            stamp_version(tmp_path, bad)
