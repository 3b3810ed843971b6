"""soak.json's exact fields, the RSS growth fit, and the targets a soak misses."""
from __future__ import annotations

import json
import threading
import time

from kiosk.soak import report as R
from kiosk.soak.sampler import Sample, _status_field, live_types, sample, trim_heap


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
