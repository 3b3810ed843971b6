"""Release and update helpers and fixtures (registered by this folder's conftest.py): releases built once per test
run with `kiosk-release` and installed once, and TUF repositories served over HTTP on loopback.

The session builds three releases into one wheelhouse: FULL (the project and every
dependency), CODE_ONLY (the same dependency files, a new project wheel) and BROKEN (a new
project wheel whose catalog does not load, so its self-test fails). A repository is made
per test with `kiosk-release init` and `publish`; the server records every request, so a
test sees what crossed the wire.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

FULL, CODE_ONLY, BROKEN = "1.0.0", "1.0.1", "1.0.2"
BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOOL_TIMEOUT_S = 900


def tool(name: str, *args: Any, timeout: float = TOOL_TIMEOUT_S, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    """Run one of the project's console scripts (kiosk-release, kiosk-provision, kiosk) as a technician would."""
    return subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``proc`` after checking it exited 0 (its output in the assertion message)."""
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@dataclass(frozen=True)
class Wheelhouse:
    """The session's releases: manifests by version, all wheels in one folder."""

    dir: Path

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Hold the wheelhouse while building into it or reading its listing: the xdist workers of a run share it."""
        with _run_wide_lock(self.dir.parent):
            yield

    def manifest_path(self, version: str) -> Path:
        """police-kiosk-VERSION.json."""
        return self.dir / f"police-kiosk-{version}.json"

    def manifest(self, version: str) -> dict[str, Any]:
        """The manifest as JSON."""
        return json.loads(self.manifest_path(version).read_text())

    def project_wheel(self, version: str) -> dict[str, Any]:
        """The manifest's entry for the project's own wheel."""
        return next(w for w in self.manifest(version)["wheels"] if w["file"].startswith(f"police_kiosk-{version}-"))


def broken_source(dest: Path) -> Path:
    """A copy of the project whose catalog is not valid YAML."""
    dest.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "kiosk", "provisioning", "print_templates"):
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    catalog = dest / "kiosk" / "services" / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace("categories:\n", "categories: [\n", 1),
                       encoding="utf-8")
    return dest


@contextlib.contextmanager
def _run_wide_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (a lock file beside it), across processes."""
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _run_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's temporary folder: under xdist the parent of each worker's own, so the workers share it."""
    run_tmp = tmp_path_factory.getbasetemp()
    return run_tmp.parent if os.environ.get("PYTEST_XDIST_WORKER") else run_tmp


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """FULL, CODE_ONLY and BROKEN built with `kiosk-release build` into one wheelhouse (once per test run).

    The builds take minutes of CPU: under xdist the workers of a run share one wheelhouse in the run's temporary
    folder (the parent of each worker's own); the first to come builds it, the others wait and take it.
    """
    base = _run_tmp(tmp_path_factory) / "releases"
    out = base / "wheelhouse"
    with _run_wide_lock(base):
        if not (base / "built").exists():  # else another worker built it; a half-made one is made afresh
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            ok(tool("kiosk-release", "build", "--out", out, "--version", FULL))
            ok(tool("kiosk-release", "build", "--out", out, "--version", CODE_ONLY))
            ok(tool("kiosk-release", "build", "--out", out, "--version", BROKEN,
                    "--source", broken_source(base / "broken")))
            (base / "built").touch()
    return Wheelhouse(out)


class _RecordingHandler(SimpleHTTPRequestHandler):
    """Serves the server's current folder; records each request's path and status."""

    def __init__(self, *args: Any, server_ref: "RepoServer", **kwargs: Any) -> None:
        self.server_ref = server_ref
        super().__init__(*args, directory=str(server_ref.directory), **kwargs)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.server_ref.requests.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@dataclass
class RepoServer:
    """A static HTTP server on loopback serving ``directory`` (which a test may point elsewhere)."""

    directory: Path
    requests: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_RecordingHandler, server_ref=self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="tuf-repo", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The repository URL R."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def wheel_requests(self) -> list[str]:
        """Paths of the wheels fetched, in order."""
        return [p for p, _ in self.requests if p.startswith("/targets/wheels/")]

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def server_pool(make: Callable[[Path], Any]) -> Iterator[Callable[[Path], Any]]:
    """For a fixture: yields ``start(folder)``, which serves ``folder`` with ``make``; every server is stopped after."""
    servers: list[Any] = []

    def start(folder: Path) -> Any:
        server = make(Path(folder))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def serve_repo() -> Iterator[Any]:
    """``serve_repo(folder)`` starts a RepoServer; every one is stopped after the test."""
    yield from server_pool(RepoServer)


def write_config(path: Path, state_dir: Path, repo_url: str, terminal_id: str = "JN-TEST-0001",
                 window: str = "00:00-00:00") -> Path:
    """A demo-profile config whose state lives in ``state_dir`` and whose updates come from ``repo_url``
    (maintenance window: the whole day, unless ``window`` says otherwise)."""
    path.write_text(f'[terminal]\nid = "{terminal_id}"\n[paths]\nstate_dir = "{state_dir}"\n'
                    f'[update]\nrepo = "{repo_url}"\nwindow = "{window}"\n', encoding="utf-8")
    return path


def update(action: str, config: Path, *args: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`kiosk-provision update ACTION --config CONFIG --json ARGS`; the process and its JSON answer."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    proc = tool("kiosk-provision", "update", action, "--config", config, "--json", *args, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no JSON answer (exit {proc.returncode}): {proc.stderr}"
    return proc, json.loads(lines[-1])


def copy_linked(src: Path, dest: Path) -> None:
    """Copy a tree with hard links (the tools replace files, never write into them, so sharing is safe)."""
    shutil.copytree(src, dest, copy_function=os.link, symlinks=True)


@dataclass
class Terminal:
    """A terminal with a served repository: its config, state folder and file-system root."""

    base: Path
    repo: Path
    keys: Path
    state: Path
    root: Path
    config: Path
    server: RepoServer
    wheelhouse: Wheelhouse

    def publish(self, version: str, *extra: Any) -> None:
        """`kiosk-release publish` one of the session's releases into this terminal's repository."""
        ok(tool("kiosk-release", "publish", "--repo", self.repo, "--keys", self.keys,
                self.wheelhouse.manifest_path(version), *extra))

    def apply(self, *extra: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """`kiosk-provision update apply --root ROOT --json`."""
        return update("apply", self.config, "--root", self.root, *extra)

    def check(self, *extra: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """`kiosk-provision update check --root ROOT --json`."""
        return update("check", self.config, "--root", self.root, *extra)

    @property
    def current(self) -> str:
        """Where ``current`` points."""
        return os.readlink(self.root / "opt/police-kiosk/current")

    def releases(self) -> list[str]:
        """The release folders under the root."""
        return sorted(p.name for p in (self.root / "opt/police-kiosk/releases").iterdir())

    def cached_wheels(self) -> set[str]:
        """``SHA256/FILE`` of every wheel in the terminal's cache."""
        wheels = self.state / "update" / "wheels"
        return {f"{p.parent.name}/{p.name}" for p in wheels.glob("*/*")}

    def mark_installed(self, version: str) -> None:
        """Make ``version`` the installed release: its folder with its marker, and ``current`` naming it."""
        folder = self.root / "opt/police-kiosk/releases" / version
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.wheelhouse.manifest_path(version), folder / "police-kiosk-release.json")
        link = self.root / "opt/police-kiosk/current"
        link.unlink(missing_ok=True)
        os.symlink(f"releases/{version}", link)

    def target_file(self, target_path: str, sha256: str) -> Path:
        """Where the repository stores a target (consistent snapshots prefix the hash)."""
        folder, _, name = target_path.rpartition("/")
        return self.repo / "targets" / folder / f"{sha256}.{name}"


@dataclass
class FirstInstall:
    """The session's one full first install, end to end: what apply answered and what crossed the wire."""

    terminal: Terminal
    proc: subprocess.CompletedProcess[str]
    answer: dict[str, Any]
    seconds: float
    requests: list[tuple[str, int]]


@pytest.fixture(scope="session")
def first_install(wheelhouse: Wheelhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstInstall]:
    """An empty terminal takes FULL from a repository made with kiosk-release and served on loopback.

    Once per test run: the install builds a whole virtual environment (a minute of CPU), so under xdist the first
    worker to come installs into the run's temporary folder and records what apply answered and what crossed the
    wire; every worker then serves that repository itself and works on its own copy of the terminal's update
    state, while the installed root is shared (read, never written, by the tests that use it).
    """
    shared = _run_tmp(tmp_path_factory) / "first-install"
    record = shared / "first-install.json"
    with _run_wide_lock(shared):
        if not record.exists():  # else another worker installed it; a half-made one is made afresh
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            record.write_text(json.dumps(_install_full(wheelhouse, shared)), encoding="utf-8")
    done = json.loads(record.read_text(encoding="utf-8"))
    base = tmp_path_factory.mktemp("first-install")
    update_dir = base / "state" / "update"
    shutil.copytree(shared / "state" / "update", update_dir, symlinks=True, ignore=shutil.ignore_patterns("wheels"))
    copy_linked(shared / "state" / "update" / "wheels", update_dir / "wheels")
    server = RepoServer(shared / "repo")
    try:
        term = Terminal(base, shared / "repo", shared / "keys", base / "state", shared / "root",
                        write_config(base / "kiosk.toml", base / "state", server.url), server, wheelhouse)
        proc = subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"], done["stderr"])
        yield FirstInstall(term, proc, done["answer"], done["seconds"], [tuple(r) for r in done["requests"]])
    finally:
        server.stop()


def _install_full(wheelhouse: Wheelhouse, base: Path) -> dict[str, Any]:
    """Make a repository in ``base``, publish FULL, serve it and apply it to an empty terminal there; what apply
    answered and the requests the server saw, as JSON."""
    import time

    repo, keys = base / "repo", base / "keys"
    ok(tool("kiosk-release", "init", "--repo", repo, "--keys", keys))
    ok(tool("kiosk-release", "publish", "--repo", repo, "--keys", keys, wheelhouse.manifest_path(FULL)))
    server = RepoServer(repo)
    try:
        term = Terminal(base, repo, keys, base / "state", base / "root",
                        write_config(base / "kiosk.toml", base / "state", server.url), server, wheelhouse)
        started = time.monotonic()
        proc, answer = term.apply("--tuf-root", repo / "metadata" / "root.json")
        return {"args": [str(a) for a in proc.args], "returncode": proc.returncode, "stdout": proc.stdout,
                "stderr": proc.stderr, "answer": answer, "seconds": time.monotonic() - started,
                "requests": list(server.requests)}
    finally:
        server.stop()


@pytest.fixture
def terminal(first_install: FirstInstall, tmp_path: Path, serve_repo: Any) -> Terminal:
    """A terminal running FULL (its wheels cached, its TUF metadata trusted) with its own copy of the repository."""
    done = first_install.terminal
    copy_linked(done.repo, tmp_path / "repo")
    shutil.copytree(done.keys, tmp_path / "keys")
    (tmp_path / "state" / "update").mkdir(parents=True)
    shutil.copytree(done.state / "update" / "tuf", tmp_path / "state" / "update" / "tuf", symlinks=True)
    copy_linked(done.state / "update" / "wheels", tmp_path / "state" / "update" / "wheels")
    server = serve_repo(tmp_path / "repo")
    term = Terminal(tmp_path, tmp_path / "repo", tmp_path / "keys", tmp_path / "state", tmp_path / "root",
                    write_config(tmp_path / "kiosk.toml", tmp_path / "state", server.url), server, done.wheelhouse)
    term.mark_installed(FULL)
    return term
