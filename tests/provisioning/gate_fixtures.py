"""Fixtures of the switch-over tests: two test builds that fail the health gate, and a repository server that stalls.

CRASH is the project with its ``kiosk run`` raising at start; HANG starts, says READY, and
never writes its run status. Both pass their release self-test (which does not run the
kiosk), so only the health gate can catch them. They are built once per session into the
session's wheelhouse, beside FULL and CODE_ONLY.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from release_fixtures import (PROJECT_ROOT, BIN, RepoServer, Wheelhouse, _RecordingHandler, broken_source, ok,
                              server_pool, tool)

CRASH, HANG = "1.0.3", "1.0.4"
RUN_PY = "kiosk/run.py"


def _patched_source(dest: Path, old: str, new: str) -> Path:
    """A copy of the project (as broken_source makes it) with one change to kiosk/run.py."""
    broken_source(dest)
    catalog = dest / "kiosk" / "services" / "catalog.yaml"  # broken_source broke the catalog: take it back
    catalog.write_bytes((PROJECT_ROOT / "kiosk" / "services" / "catalog.yaml").read_bytes())
    run = dest / RUN_PY
    text = run.read_text(encoding="utf-8")
    assert old in text, f"{RUN_PY} no longer holds {old!r}: update the test build"
    run.write_text(text.replace(old, new, 1), encoding="utf-8")
    return dest


@pytest.fixture(scope="session")
def gate_releases(wheelhouse: Wheelhouse, tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """CRASH and HANG built into the session's wheelhouse."""
    base = tmp_path_factory.mktemp("gate-builds")
    with wheelhouse.building():  # another xdist worker may have built them, or be building them
        if not wheelhouse.manifest_path(CRASH).exists():
            crash = _patched_source(base / "crash", "    prepare_kivy(cfg.ui, headless=headless)\n",
                                    "    raise RuntimeError('this test build crashes at start')\n")
            ok(tool("kiosk-release", "build", "--out", wheelhouse.dir, "--version", CRASH, "--source", crash))
        if not wheelhouse.manifest_path(HANG).exists():
            hang = _patched_source(base / "hang", "    _report_run_status(runtime)\n", "")
            ok(tool("kiosk-release", "build", "--out", wheelhouse.dir, "--version", HANG, "--source", hang))
    return wheelhouse


class _StallingHandler(_RecordingHandler):
    """Sends half of a file whose path starts with the server's ``stall_prefix``, then waits to be released."""

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        ref = self.server_ref
        if ref.stall_prefix and self.path.startswith(ref.stall_prefix):
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            ref.stalled.set()
            ref.release.wait(300)
            self.close_connection = True
            return
        super().do_GET()


@dataclass
class StallingRepoServer(RepoServer):
    """A RepoServer that can hold one download half way (``stall_prefix``) until ``release`` is set."""

    stall_prefix: str = ""
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_StallingHandler, server_ref=self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="tuf-repo-stalling", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Release a held download, then shut down."""
        self.release.set()
        super().stop()


def start_apply(config: Path, root: Path, *extra: Any) -> subprocess.Popen[str]:
    """`kiosk-provision update apply --json` in the background (to be killed part way)."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    return subprocess.Popen([str(BIN / "kiosk-provision"), "update", "apply", "--config", str(config), "--root",
                             str(root), "--json", *map(str, extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def kill_when(proc: subprocess.Popen[str], condition: Callable[[], bool], what: str, timeout_s: float = 600) -> None:
    """SIGKILL ``proc`` the moment ``condition()`` holds (polled every 20 ms)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"apply ended (exit {proc.returncode}) before {what}:\n{out}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def pid_gone(pid: int, timeout_s: float = 30) -> bool:
    """True once no process ``pid`` exists (zombies of other parents count as gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def stalling_server() -> Iterator[Callable[[Path], StallingRepoServer]]:
    """``stalling_server(folder)``; every server is stopped after the test."""
    yield from server_pool(StallingRepoServer)


def stalling_terminal(first_install: Any, tmp_path: Path, server_factory: Callable[[Path], StallingRepoServer],
                      **config: Any) -> Any:
    """As release_fixtures' ``terminal`` (FULL installed, its wheels cached), served by a StallingRepoServer."""
    import shutil

    from release_fixtures import Terminal, copy_linked, write_config

    done = first_install.terminal
    copy_linked(done.repo, tmp_path / "repo")
    shutil.copytree(done.keys, tmp_path / "keys")
    (tmp_path / "state" / "update").mkdir(parents=True)
    shutil.copytree(done.state / "update" / "tuf", tmp_path / "state" / "update" / "tuf", symlinks=True)
    copy_linked(done.state / "update" / "wheels", tmp_path / "state" / "update" / "wheels")
    server = server_factory(tmp_path / "repo")
    term = Terminal(tmp_path, tmp_path / "repo", tmp_path / "keys", tmp_path / "state", tmp_path / "root",
                    write_config(tmp_path / "kiosk.toml", tmp_path / "state", server.url, **config), server,
                    done.wheelhouse)
    term.mark_installed("1.0.0")
    return term


def add_update_keys(config: Path, **keys: Any) -> None:
    """Append keys to the [update] table (write_config writes it last)."""
    with open(config, "a", encoding="utf-8") as fh:
        for key, value in keys.items():
            fh.write(f"{key} = {value!r}\n" if isinstance(value, str) else f"{key} = {value}\n")
