"""kiosk-provision update apply end to end against a served repository: a first install, a code-only update,
and a release whose own self-test fails."""
import json
import os
import subprocess

import pytest

from release_fixtures import BROKEN, CODE_ONLY, FULL, update

# The session's first use builds every release and installs one: minutes on a cold pip cache.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _installed_version(python, cwd) -> str:
    """``kiosk.__version__`` as the release's own interpreter imports it: run from elsewhere than the checkout,
    and without PYTHONPATH (as release_env runs a release), since either would put a checkout's kiosk/ first."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "-c", "import kiosk; print(kiosk.__version__)"], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env).stdout.strip()


def test_a_first_install_downloads_every_wheel_once_builds_the_release_and_switches(first_install, wheelhouse):
    term, answer = first_install.terminal, first_install.answer
    assert first_install.proc.returncode == 0, first_install.proc.stderr
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("installed", FULL, None)
    manifest = wheelhouse.manifest(FULL)
    fetched = [path for path, status in first_install.requests if path.startswith("/targets/wheels/")]
    expected = sorted(f"/targets/wheels/{w['sha256']}/{w['sha256']}.{w['file']}" for w in manifest["wheels"])
    assert sorted(fetched) == expected  # each wheel once, by content
    manifest_bytes = wheelhouse.manifest_path(FULL).stat().st_size
    assert answer["downloaded_bytes"] == sum(w["size"] for w in manifest["wheels"]) + manifest_bytes
    assert term.current == f"releases/{FULL}" and term.releases() == [FULL]
    # the client bootstrapped from --tuf-root and keeps its metadata in the state folder
    tuf = term.state / "update" / "tuf"
    assert (tuf / "root_history" / "1.root.json").read_bytes() == (term.repo / "metadata/root.json").read_bytes()
    assert {"timestamp.json", "snapshot.json", "targets.json"} <= {p.name for p in tuf.iterdir()}
    assert json.loads((term.state / "update" / "last.json").read_text())["outcome"] == "installed"


def test_the_release_environment_holds_exactly_the_verified_wheels_and_runs(first_install, wheelhouse):
    release = first_install.terminal.root / "opt/police-kiosk/current"
    python = release / "bin" / "python"
    assert _installed_version(python, first_install.terminal.base) == FULL
    listed = subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "list", "--format", "json"], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"},
                            cwd=first_install.terminal.base)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    from_wheels = {w["file"].split("-")[0].lower().replace("_", "-") for w in wheelhouse.manifest(FULL)["wheels"]}
    assert installed - {"pip"} == from_wheels  # pip comes with the venv; everything else from the manifest
    selftest = subprocess.run([release / "bin" / "kiosk", "selftest", "--release", "--json"], capture_output=True,
                              text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "offscreen",
                                                           "HOME": str(first_install.terminal.base)},
                              cwd=first_install.terminal.base)
    report = json.loads(selftest.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["version"] == FULL
    assert [c["name"] for c in report["checks"]] == ["config", "catalog", "translations", "certificate", "receipt",
                                                     "ui"]


def test_after_an_install_check_reports_nothing_newer(first_install):
    proc, answer = update("check", first_install.terminal.config, "--root", first_install.terminal.root)
    assert proc.returncode == 0
    assert answer == {"installed": FULL, "offered": None, "in_rollout": False, "bad_versions": []}


def test_a_code_only_update_downloads_only_the_projects_wheel(terminal, wheelhouse):
    new = wheelhouse.project_wheel(CODE_ONLY)
    # a download cut off earlier left a damaged copy where the wheel belongs: it is fetched again, never used
    damaged = terminal.state / "update" / "wheels" / new["sha256"] / new["file"]
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PK\x03\x04 cut off")
    terminal.publish(CODE_ONLY)
    proc, answer = terminal.apply()
    assert proc.returncode == 0, answer
    assert (answer["outcome"], answer["version"]) == ("installed", CODE_ONLY)
    assert terminal.server.wheel_requests() == [f"/targets/wheels/{new['sha256']}/{new['sha256']}.{new['file']}"]
    assert answer["downloaded_bytes"] == new["size"] + wheelhouse.manifest_path(CODE_ONLY).stat().st_size
    assert terminal.current == f"releases/{CODE_ONLY}"
    assert terminal.releases() == [FULL, CODE_ONLY]  # the previous release stays for part 2's rollback
    assert _installed_version(terminal.root / "opt/police-kiosk/current/bin/python", terminal.base) == CODE_ONLY
    again_proc, again = terminal.apply()
    assert again_proc.returncode == 0 and again["outcome"] == "up_to_date" and again["version"] == CODE_ONLY


def test_a_release_whose_self_test_fails_is_refused_and_removed(terminal):
    cached_before = terminal.cached_wheels()
    terminal.publish(BROKEN)
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("refused", BROKEN, "selftest_failed")
    assert "catalog" in answer["detail"]
    assert terminal.current == f"releases/{FULL}" and terminal.releases() == [FULL]
    assert len(terminal.cached_wheels() - cached_before) == 1  # its wheel verified and kept, nothing else new
