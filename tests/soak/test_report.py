"""soak.json's exact fields, the RSS growth fit, and the targets a soak misses."""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import json
import mmap
import os
import socket
import sys
import threading
import time

from kiosk.services.heap import trim_heap
from kiosk.soak import report as R
from kiosk.soak.sampler import (Sample, _status_field, grown, live_types, malloc_mib, memory_map, open_descriptors,
                                opened, python_arenas_mib, python_blocks, sample)


def _samples(rss_step: float, fds_step: int = 0, threads_step: int = 0, n: int = 6) -> list[Sample]:
    return [Sample(i * 100, 200 + i * rss_step, 30 + i * fds_step, 8 + i * threads_step, 500, 40) for i in range(n)]


def test_the_sampler_returns_every_field_of_this_process():
    got = sample(7)
    assert set(got.to_dict()) == {"session", "rss_mib", "fds", "threads", "widgets", "textures"}
    assert got.session == 7
    assert got.rss_mib > 1 and got.fds >= 3 and got.threads >= 1
    assert got.widgets >= 0 and got.textures >= 0


def test_a_sample_reads_the_rss_after_the_heap_gave_back_what_was_freed():
    # 300 MiB in 3 KiB blocks (glibc's heap, not Python's small-object arenas); every 64th is kept, so the
    # freed blocks lie between live ones and the heap's top cannot simply shrink.
    blocks = [bytes(3072) for _ in range(100_000)]
    kept = blocks[::64]
    held = _status_field("VmRSS") / 1024
    del blocks
    assert trim_heap()
    got = sample(1)
    assert got.rss_mib < held - 150, (held, got.rss_mib)
    assert len(kept) == 1563


def test_counting_live_objects_does_not_break_a_thread_filling_a_tuple():
    # gc.get_objects() hands out tuples other threads are still filling; a thread switched out inside
    # tuple(<generator>) then fails to resize its tuple (SystemError), as the pinyin warm-up did under a sample.
    # Counting the plain way fails this within a few rounds.
    errors: list[BaseException] = []
    stop = threading.Event()

    def fill() -> None:
        try:
            while not stop.is_set():
                for _ in range(2_000):
                    tuple(str(j) for j in range(64))
                time.sleep(0.001)
        except SystemError as exc:
            errors.append(exc)

    worker = threading.Thread(target=fill)
    worker.start()
    try:
        for _ in range(40):
            kinds = live_types()
            assert kinds[threading.Thread] >= 1
            if errors:
                break
    finally:
        stop.set()
        worker.join()
    assert errors == []


def test_soak_json_has_exactly_its_fields(tmp_path):
    result = R.SoakResult(sessions=3, outcomes={"completed": 2, "cancelled": 1}, faults={"backend_5xx": 1},
                          samples=_samples(0.0, n=2), crashes=0, stuck=0, seconds=12.34, warmup=0)
    result.write(tmp_path / "soak.json", seed=9)
    data = json.loads((tmp_path / "soak.json").read_text())
    assert tuple(data) == R.FIELDS
    assert data["samples"][0] == {"session": 0, "rss_mib": 200.0, "fds": 30, "threads": 8, "widgets": 500,
                                  "textures": 40}
    assert data["seed"] == 9 and data["ledger_mismatches"] == 0 and data["seconds"] == 12.3
    assert data["rss_growth_mib_per_1000"] == 0.0
    assert data["python_allocator"] == (os.environ.get("PYTHONMALLOC") or "pymalloc")  # this process's, as it started


def test_rss_growth_is_fitted_after_the_warmup_only():
    samples = [Sample(0, 100.0, 30, 8, 0, 0)] + _samples(0.2)[1:]  # 100 MiB of warm-up, then 2 MiB per 1,000
    result = R.SoakResult(samples=samples, warmup=100)
    assert abs(result.rss_growth() - 2.0) < 1e-9
    assert R.SoakResult(samples=samples[:2], warmup=100).rss_growth() is None  # one sample after the warm-up


def test_a_soak_that_meets_its_targets_misses_none():
    result = R.SoakResult(samples=_samples(0.1), faults={"a": 1, "b": 3}, warmup=100)
    assert result.missed(("a", "b")) == []


def test_every_missed_target_is_named():
    result = R.SoakResult(samples=_samples(1.0, fds_step=2, threads_step=1), faults={"a": 1, "b": 0},
                          crashes=1, stuck=2, mismatches=["x"], warmup=100)
    missed = " | ".join(result.missed(("a", "b", "c")))
    for words in ("RSS grew 10.00 MiB", "open descriptors rose from 32 to 40", "threads rose from 9 to 13",
                  "1 crash", "2 session(s) stuck", "1 ledger mismatch", "never applied: b, c"):
        assert words in missed


def test_rss_growth_is_fitted_on_the_readings_when_there_are_some():
    # Samples every 100 sessions climb 10 MiB per 1,000; the readings every 10 sessions, which the growth is judged
    # on, are flat around 300 MiB with a scatter that ten samples could not average out.
    result = R.SoakResult(samples=_samples(1.0), warmup=100)
    result.readings = [(n, 300.0 + (7.0 if (n // 10) % 2 else -7.0)) for n in range(0, 1001, 10)]
    assert abs(result.rss_growth()) < 0.5
    assert abs(result.sample_growth() - 10.0) < 1e-9
    result.readings = [(n, 300.0 + 0.004 * n) for n in range(0, 1001, 10)]  # 4 MiB per 1,000
    assert abs(result.rss_growth() - 4.0) < 1e-9
    result.readings = [(0, 100.0), (100, 300.0)]  # one reading after the warm-up: the samples decide
    assert abs(result.rss_growth() - 10.0) < 1e-9


def test_the_slopes_standard_error_comes_from_the_scatter_and_is_printed():
    assert R.slope_stderr_per_1000([(n, 300.0 + 0.004 * n) for n in range(0, 1001, 10)]) < 1e-9  # on the line
    # Flat with residuals -1, 2, -1: sqrt(6 / (3 - 2) / 2e6) per session, sqrt(3) MiB per 1,000.
    assert abs(R.slope_stderr_per_1000([(0, 0.0), (1000, 3.0), (2000, 0.0)]) - 3 ** 0.5) < 1e-9
    assert R.slope_stderr_per_1000([(0, 0.0), (1000, 3.0)]) is None  # two points leave no scatter to judge
    result = R.SoakResult(samples=_samples(0.0), warmup=0, sessions=2000, seconds=60.0)
    result.readings = [(0, 0.0), (1000, 3.0), (2000, 0.0)]
    assert "rss growth: 0.00 MiB per 1,000 sessions (standard error 1.73)" in result.table("t")


def test_soak_json_carries_the_readings(tmp_path):
    result = R.SoakResult(sessions=20, samples=_samples(0.0, n=2), readings=[(0, 200.0), (10, 201.5)], warmup=0)
    result.write(tmp_path / "soak.json")
    data = json.loads((tmp_path / "soak.json").read_text())
    assert data["rss_readings"] == [[0, 200.0], [10, 201.5]]
    assert data["rss_growth_mib_per_1000"] == 150.0


def test_the_memory_map_accounts_for_the_whole_resident_set():
    where = memory_map()
    rss = _status_field("VmRSS") / 1024
    assert set(where) == {"heap", "stacks", "anon", "files"}
    assert where["files"] > 1  # the interpreter itself is a mapped file
    assert abs(sum(where.values()) - rss) < max(2.0, rss * 0.05), (where, rss)
    held = mmap.mmap(-1, 64 * 2**20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # a mapping of its own
    for offset in range(0, len(held), 4096):
        held[offset] = 1  # every page touched: resident
    after = memory_map()
    assert after["anon"] > where["anon"] + 60, (where, after)
    assert abs(sum(after.values()) - _status_field("VmRSS") / 1024) < max(2.0, rss * 0.05)
    held.close()


def test_the_memory_map_counts_a_threads_stack_as_a_stack():
    nested: list = []
    for _ in range(5000):  # json's C encoder recurses in C: a deep list touches the thread's stack
        nested = [nested]

    before = memory_map()["stacks"]
    running, done = threading.Event(), threading.Event()

    def work() -> None:
        json.dumps(nested)
        running.set()
        done.wait(10)

    thread = threading.Thread(target=work)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    thread.start()
    try:
        assert running.wait(10)
        during = memory_map()["stacks"]
    finally:
        done.set()
        thread.join()
        sys.setrecursionlimit(limit)
    assert during >= before + 0.2, (before, during)


def test_python_arenas_hold_at_least_the_blocks_in_them():
    hoard = [object() for _ in range(400_000)]  # small objects: pymalloc's, about 6 MiB of 16-byte blocks
    with_hoard = python_arenas_mib()
    del hoard
    assert with_hoard >= 6, with_hoard
    assert python_arenas_mib() <= with_hoard


def test_malloc_mib_tells_memory_held_from_memory_freed():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = malloc_mib()
    assert set(before) == {"used", "free"} and before["used"] > 0
    blocks = [libc.malloc(4096) for _ in range(8192)]  # 32 MiB in small blocks: inside the arenas
    held = malloc_mib()
    assert held["used"] >= before["used"] + 30, (before, held)
    for block in blocks[:-1]:
        libc.free(block)  # all but the last: the heap's top stays in use, so the freed blocks stay inside it
    freed = malloc_mib()
    assert freed["used"] < held["used"] - 30 and freed["free"] > held["free"] + 30, (held, freed)
    libc.free(blocks[-1])


def test_python_blocks_counts_live_python_objects():
    before = python_blocks()
    objects = [[i] for i in range(50_000)]
    assert python_blocks() >= before + 50_000
    del objects
    assert python_blocks() < before + 10_000


def test_open_descriptors_name_a_file_opened_and_count_sockets_as_one_kind(tmp_path):
    before = open_descriptors()
    path = tmp_path / "journal.db"
    with open(path, "wb"), socket.socket() as one, socket.socket() as two:
        after = open_descriptors()
        assert opened(before, after) == [("socket", 2), (str(path), 1)]
    assert opened(before, open_descriptors()) == []  # all closed again


def test_grown_names_the_types_that_rose_most_and_only_those():
    class Leaky:
        pass

    before = collections.Counter({int: 10, str: 5, Leaky: 1})
    after = collections.Counter({int: 12, str: 3, Leaky: 41, float: 1})
    assert grown(before, after, top=2) == [(f"{__name__}.test_grown_names_the_types_that_rose_most_and_only_those"
                                            ".<locals>.Leaky", 40), ("builtins.int", 2)]
    assert ("builtins.str", -2) not in grown(before, after) and len(grown(before, after)) == 3


def test_the_allocation_tracer_names_the_line_that_grew():
    from kiosk.soak.ui_soak import AllocationTracer

    said: list[str] = []
    tracer = AllocationTracer(said.append)
    try:
        tracer.compare(100)  # the baseline
        kept = [bytearray(1024) for _ in range(2000)]  # ~2 MiB held from this line
        tracer.compare(200)
    finally:
        tracer.stop()
    assert said[0].startswith("soak ui: allocations traced from session 100")
    grown = said[1].split("at session 200: ", 1)[1].split("; ")
    where, size, _kib, count = grown[0].split()
    assert where.startswith("tests/soak/test_report.py:"), grown[0]  # the last three parts of its path
    assert int(size) >= 2000 and int(count) >= 2000, grown[0]  # 2,000 KiB in 2,000 blocks, and more around them
    assert len(kept) == 2000
