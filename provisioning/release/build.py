"""`kiosk-release build`: the project's wheel, the wheel of every dependency, and the release's manifest.

A release is built on the kiosk's platform (Debian 12, CPython 3.11, x86-64): pyscard and
pycups publish no wheels and are compiled here, so their wheels fit the terminals only when
built on the same system. The output folder is also the publisher's wheelhouse: when it
already holds wheels that satisfy the new release's requirements, pip takes them from there
without asking any index, so a release that changes only the kiosk's code reuses the very
same dependency files (same bytes, same SHA-256) and a kiosk downloads only the new
project wheel. Only when the requirements changed does pip go to the index.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from provisioning.atomic import write_atomic
from provisioning.errors import ProvisionError
from provisioning.release.manifest import PROJECT_WHEEL_PREFIX, Manifest, WheelRef, manifest_file_name, parse_version

# What a build copies from the source tree: enough for setuptools to make the wheel.
SOURCE_ITEMS = ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in", "kiosk", "provisioning", "print_templates")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".*")
_VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
VERSION_FILE = "kiosk/__init__.py"
PIP_TIMEOUT_S = 1800


class BuildFailed(ProvisionError):
    """A release could not be built; the output folder holds no manifest for it."""

    code = "build_failed"
    exit_status = 70


@dataclass(frozen=True)
class Platform:
    """The interpreter a release is built for."""

    implementation: str
    python: str  # major.minor
    machine: str
    system: str


KIOSK_PLATFORM = Platform("CPython", "3.11", "x86_64", "Linux")


def this_platform() -> Platform:
    """The platform this process runs on."""
    return Platform(platform.python_implementation(), "%d.%d" % sys.version_info[:2], platform.machine(),
                    platform.system())


def check_platform(found: Platform | None = None) -> None:
    """Refuse to build anywhere but on the kiosk's platform (compiled wheels must fit the terminals)."""
    found = found or this_platform()
    if found != KIOSK_PLATFORM:
        want = KIOSK_PLATFORM
        raise BuildFailed(f"releases are built on {want.system} {want.machine} with {want.implementation} "
                          f"{want.python} (the kiosk's platform, Debian 12); this is {found.system} "
                          f"{found.machine} with {found.implementation} {found.python}")


def project_root() -> Path:
    """The source checkout this module belongs to (the folder holding setup.cfg)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "setup.cfg").is_file():
        raise BuildFailed(f"{root} is not a source checkout of the kiosk (no setup.cfg); pass --source DIR")
    return root


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_source(source: Path, dest: Path) -> None:
    """Copy what the wheel is made of from ``source`` into ``dest``."""
    if not (source / "setup.cfg").is_file():
        raise BuildFailed(f"{source} holds no setup.cfg: not a source checkout of the kiosk")
    dest.mkdir(parents=True)
    for name in SOURCE_ITEMS:
        item = source / name
        if item.is_dir():
            shutil.copytree(item, dest / name, ignore=_IGNORED)
        elif item.is_file():
            shutil.copy2(item, dest / name)


def stamp_version(src: Path, version: str | None) -> str:
    """Write ``version`` into the copied source (None keeps its own); returns the version the wheel gets."""
    path = src / VERSION_FILE
    text = path.read_text(encoding="utf-8")
    found = _VERSION_LINE.search(text)
    if found is None:
        raise BuildFailed(f"{VERSION_FILE} has no __version__ line to stamp")
    if version is None:
        return str(parse_version(found.group(1), f"{VERSION_FILE} __version__"))
    version = str(parse_version(version, "--version"))
    path.write_text(text[:found.start(1)] + version + text[found.end(1):], encoding="utf-8")
    return version


def _pip(python: str, args: list[str], log: Callable[[str], None]) -> subprocess.CompletedProcess[str]:
    cmd = [python, "-m", "pip", "--disable-pip-version-check", *args]
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)


def _fail(what: str, proc: subprocess.CompletedProcess[str]) -> BuildFailed:
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return BuildFailed(f"{what} failed (exit {proc.returncode}):\n{tail}")


def build_project_wheel(src: Path, dest: Path, python: str, log: Callable[[str], None]) -> Path:
    """The kiosk's own wheel from the copied source."""
    # setuptools at hand: build with it instead of fetching a fresh one into an isolated environment
    extra = ["--no-build-isolation"] if all(importlib.util.find_spec(m) for m in ("setuptools", "wheel")) else []
    proc = _pip(python, ["wheel", "--no-deps", *extra, "-w", str(dest), str(src)], log)
    if proc.returncode != 0:
        raise _fail("building the project's wheel", proc)
    wheels = sorted(dest.glob(f"{PROJECT_WHEEL_PREFIX}*.whl"))
    if len(wheels) != 1:
        raise BuildFailed(f"expected one project wheel in {dest}, found {[w.name for w in wheels]}")
    return wheels[0]


def resolve_dependencies(project_wheel: Path, wheelhouse: Path, dest: Path, python: str,
                         log: Callable[[str], None]) -> list[Path]:
    """Every wheel the project needs (its own included) in ``dest``: from ``wheelhouse`` alone when it suffices."""
    base = ["--prefer-binary", "-w", str(dest), "--find-links", str(wheelhouse), str(project_wheel)]
    offline = _pip(python, ["wheel", "--no-index", *base], log)
    if offline.returncode != 0:
        log("the wheelhouse does not satisfy every requirement; asking the package index")
        for stale in dest.iterdir():
            stale.unlink()
        online = _pip(python, ["wheel", *base], log)
        if online.returncode != 0:
            raise _fail("building the dependencies' wheels", online)
    return sorted(dest.glob("*.whl"))


def requires_python_of(wheel: Path) -> str:
    """The wheel's Requires-Python (from its METADATA)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if meta is None:
            raise BuildFailed(f"{wheel.name} has no METADATA")
        for line in zf.read(meta).decode("utf-8").splitlines():
            if line.startswith("Requires-Python:"):
                return line.split(":", 1)[1].strip()
            if not line:
                break
    raise BuildFailed(f"{wheel.name} declares no Requires-Python")


def _into_wheelhouse(wheel: Path, wheelhouse: Path, project_file: str) -> WheelRef:
    target = wheelhouse / wheel.name
    if target.exists() and wheel.name != project_file:
        # pip copied it from the wheelhouse, or a rebuild of the same name: the file that earlier
        # releases reference stays, so their kiosks keep the bytes they hold
        wheel.unlink()
    else:
        os.replace(wheel, target)  # the build folder lies inside the wheelhouse: same file system
    return WheelRef(target.name, sha256_file(target), target.stat().st_size)


def build_release(out: Path, *, version: str | None = None, source: Path | None = None,
                  min_from_version: str | None = None, python: str = sys.executable,
                  log: Callable[[str], None] = lambda _line: None) -> tuple[Manifest, Path]:
    """Build a release into ``out``; returns its manifest and the manifest's path. Raises BuildFailed, ManifestInvalid."""
    check_platform()
    if min_from_version is not None:
        parse_version(min_from_version, "--min-from-version")
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    source = (source or project_root()).absolute()
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out) as tmp_name:
        tmp = Path(tmp_name)
        copy_source(source, tmp / "src")
        stamped = stamp_version(tmp / "src", version)
        if (out / manifest_file_name(stamped)).exists():
            raise BuildFailed(f"release {stamped} is already built in {out}; a release's version is never reused")
        project = build_project_wheel(tmp / "src", tmp / "project", python, log)
        if not project.name.startswith(f"{PROJECT_WHEEL_PREFIX}{stamped}-"):
            raise BuildFailed(f"the wheel {project.name} does not carry version {stamped}")
        (tmp / "wheels").mkdir()
        resolved = resolve_dependencies(project, out, tmp / "wheels", python, log)
        if project.name not in {w.name for w in resolved}:
            raise BuildFailed(f"pip did not place {project.name} among the release's wheels")
        requires = requires_python_of(project)
        refs = tuple(sorted((_into_wheelhouse(w, out, project.name) for w in resolved), key=lambda r: r.file))
    manifest = Manifest(version=stamped, requires_python=requires, wheels=refs,
                        built_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
                        min_from_version=min_from_version)
    Manifest.from_dict(manifest.to_dict())  # what we write is what a kiosk accepts
    path = write_atomic(out / manifest.file_name, manifest.to_json(), mode=0o644)
    return manifest, path
