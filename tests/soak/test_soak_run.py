"""A short real soak: 12 UI sessions (the kiosk offscreen, a private pcscd) and 200 engine sessions, as `make soak` runs them.

Each soak runs in its own process, as `make soak` runs it; the test reads the JSON it wrote. The
targets on memory growth are not judged here (a dozen sessions are all warm-up): the structure is,
and that every fault kind fired, no session crashed or stuck and the books agree.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kiosk.soak.plan import ENGINE_FAULT_KINDS, FAULT_KINDS
from kiosk.soak.report import FIELDS

SAMPLE_FIELDS = {"session", "rss_mib", "fds", "threads", "widgets", "textures"}


def _start(kind: str, out, *args: str) -> subprocess.Popen:
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_FILELOG": "1", "KIVY_NO_CONFIG": "1", "KIVY_LOG_MODE": "PYTHON"}
    # The soak starts its own pcscd on its own socket: not the one this test process's hardware tests may hold.
    env.pop("PCSCLITE_CSOCK_NAME", None)
    # Started as a technician would start it, without the allocator: it must start itself again on the kiosk's.
    env.pop("PYTHONMALLOC", None)
    # Its own session: a soak cut short (a timeout) is stopped with its pcscd, by process group.
    return subprocess.Popen([sys.executable, "-m", "kiosk.soak", kind, "--out", str(out), "--seed", "7", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def _soak(kind: str, out, *args: str) -> tuple[int, str, dict]:
    proc = _start(kind, out, *args)
    try:
        output, _ = proc.communicate(timeout=840)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    name = "soak.json" if kind == "ui" else "engine-soak.json"
    assert (out / name).is_file(), output[-6000:]
    return proc.returncode, output, json.loads((out / name).read_text())


def _check(data: dict, sessions: int, kinds: tuple[str, ...], output: str) -> None:
    assert tuple(data) == FIELDS
    assert data["sessions"] == sessions and data["seed"] == 7
    assert sum(data["outcomes"].values()) == sessions
    assert set(data["faults"]) == set(kinds)
    assert all(data["faults"][kind] >= 1 for kind in kinds), data["faults"]
    assert data["samples"][0]["session"] == 0 and data["samples"][-1]["session"] == sessions
    for s in data["samples"]:
        assert set(s) == SAMPLE_FIELDS
        assert s["rss_mib"] > 0 and s["fds"] > 0 and s["threads"] > 0
    assert data["crashes"] == 0, output[-4000:]
    assert data["stuck"] == 0, output[-4000:]
    assert data["ledger_mismatches"] == 0, output[-4000:]
    assert data["seconds"] > 0
    assert data["python_allocator"] == "malloc"  # as kiosk.service runs the kiosk
    assert "fault kinds never applied" not in output


@pytest.mark.slow
@pytest.mark.timeout(900)  # 12 UI sessions take 4 to 6 minutes on a shared 2-core machine
def test_a_short_ui_soak_fires_every_fault_kind_and_writes_soak_json(tmp_path):
    status, output, data = _soak("ui", tmp_path, "--sessions", "12", "--sample-every", "4", "--warmup", "4",
                                 "--read-every", "2")
    assert status in (0, 1), output[-4000:]
    _check(data, 12, FAULT_KINDS, output)
    assert data["samples"][-1]["widgets"] > 0 and data["samples"][-1]["textures"] > 0  # a Kivy app was sampled
    assert [n for n, _ in data["rss_readings"]] == [0, 2, 4, 6, 8, 10, 12]
    assert all(rss > 0 for _, rss in data["rss_readings"])
    # Where the memory sits, at each sample: the mappings, the textures' pixels, the types that grew.
    assert output.count("soak ui: memory heap ") == 3, output[-4000:]
    assert output.count("; descriptors opened since: ") == 3, output[-4000:]  # which ones, when their count rose
    assert "outcome" in output and "fault kind" in output  # the table


def test_a_short_engine_soak_fires_every_fault_kind_and_writes_its_json(tmp_path):
    status, output, data = _soak("engine", tmp_path, "--sessions", "200", "--sample-every", "50", "--warmup", "50")
    assert status in (0, 1), output[-4000:]
    _check(data, 200, ENGINE_FAULT_KINDS, output)
    assert {s["session"] for s in data["samples"]} == {0, 50, 100, 150, 200}
    assert [n for n, _ in data["rss_readings"]] == list(range(0, 201, 10))  # every 10 sessions by default
    assert all(s["widgets"] == 0 for s in data["samples"])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(300)
def test_sigterm_stops_a_ui_soak_and_its_pcscd(tmp_path):
    """SDL turns SIGTERM into a window close the kiosk refuses: the soak's own handler must end it, cleanly."""
    proc = _start("ui", tmp_path, "--sessions", "50")
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("soak ui: session 1 "):
                break
        assert lines and lines[-1].startswith("soak ui: session 1 "), "".join(lines)[-4000:]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, (rest or "")[-4000:]
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "the soak's pcscd outlived it"
        assert not (tmp_path / "soak.json").exists()  # a stopped soak reports nothing it did not finish
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(10)
