"""soak.json, the table printed at the end, and the targets a soak must meet.

soak.json holds exactly: ``sessions``, ``outcomes`` {outcome: count}, ``faults`` {kind: count applied},
``samples`` [{session, rss_mib, fds, threads, widgets, textures}], ``rss_readings`` [[session, rss_mib]]
(the resident set alone, read every few sessions), ``rss_growth_mib_per_1000`` (fitted over the readings
from the warm-up on, or over the samples when there are fewer than two readings; null with fewer than two
of either), ``crashes``, ``stuck``, ``ledger_mismatches``, ``seconds``; ``seed``, the plan's seed, so
a run can be repeated; and ``python_allocator``, what the soaked interpreter ran its objects on (``malloc``, as
kiosk.service runs the kiosk, or ``pymalloc``; kiosk.services.heap), since the growth depends on it.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kiosk.services.heap import python_allocator
from kiosk.soak.sampler import Sample

FIELDS = ("sessions", "outcomes", "faults", "samples", "rss_readings", "rss_growth_mib_per_1000", "crashes", "stuck",
          "ledger_mismatches", "seconds", "seed", "python_allocator")
RSS_GROWTH_MAX_MIB = 5.0  # per 1,000 sessions, after the warm-up
FD_SLACK = 4  # "flat": no sample after the warm-up more than this above the first one
THREAD_SLACK = 3  # worker threads of a step still ending when the sample is taken


@dataclass
class SoakResult:
    """What one soak found (its fields are soak.json's, ``mismatches`` aside)."""

    sessions: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    readings: list[tuple[int, float]] = field(default_factory=list)  # (session, rss_mib), every few sessions
    crashes: int = 0
    stuck: int = 0
    seconds: float = 0.0
    warmup: int = 100
    mismatches: list[Any] = field(default_factory=list)  # LedgerMismatch, for the table
    allocator: str = field(default_factory=python_allocator)

    def count(self, outcome: str) -> None:
        """One more session ended with ``outcome``."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def after_warmup(self) -> list[Sample]:
        """The samples taken once the warm-up sessions were done."""
        return [s for s in self.samples if s.session >= self.warmup]

    def rss_growth(self) -> float | None:
        """MiB of resident memory per 1,000 sessions: the least-squares slope over the readings from the warm-up on
        (over the samples when there are fewer than two readings); None below two of either.

        The readings are what the target is judged on: what a trimmed heap holds scatters by ±15 MiB from one
        reading to the next with what happens to be alive (a UI soak's samples at 100-session steps read 699 to 735
        MiB with no trend after session 300), and ten samples cannot tell 5 MiB per 1,000 from that scatter."""
        later = [(n, rss) for n, rss in self.readings if n >= self.warmup]
        if len({n for n, _ in later}) >= 2:
            return slope_per_1000(later)
        return growth_per_1000(self.after_warmup())

    def sample_growth(self) -> float | None:
        """The slope over the 100-session samples alone (printed beside the readings' fit)."""
        return growth_per_1000(self.after_warmup())

    def to_json(self, seed: int | None = None) -> dict[str, Any]:
        """soak.json's object, exactly its fields (FIELDS)."""
        growth = self.rss_growth()
        return {"sessions": self.sessions, "outcomes": dict(sorted(self.outcomes.items())),
                "faults": dict(self.faults), "samples": [s.to_dict() for s in self.samples],
                "rss_readings": [[n, rss] for n, rss in self.readings],
                "rss_growth_mib_per_1000": None if growth is None else round(growth, 3),
                "crashes": self.crashes, "stuck": self.stuck, "ledger_mismatches": len(self.mismatches),
                "seconds": round(self.seconds, 1), "seed": seed, "python_allocator": self.allocator}

    def write(self, path: Path, seed: int | None = None) -> None:
        """Write soak.json to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(seed), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def missed(self, kinds: Sequence[str]) -> list[str]:
        """Every target missed, in words ('' none): RSS growth, flat descriptors and threads, no crash, none stuck,
        books that agree, every fault kind in ``kinds`` applied."""
        missed = []
        growth = self.rss_growth()
        if growth is not None and growth > RSS_GROWTH_MAX_MIB:
            missed.append(f"RSS grew {growth:.2f} MiB per 1,000 sessions (target <= {RSS_GROWTH_MAX_MIB})")
        later = self.after_warmup()
        if later:
            if max(s.fds for s in later) - later[0].fds > FD_SLACK:
                missed.append(f"open descriptors rose from {later[0].fds} to {max(s.fds for s in later)}")
            if max(s.threads for s in later) - later[0].threads > THREAD_SLACK:
                missed.append(f"threads rose from {later[0].threads} to {max(s.threads for s in later)}")
        if self.crashes:
            missed.append(f"{self.crashes} crash(es)")
        if self.stuck:
            missed.append(f"{self.stuck} session(s) stuck")
        if self.mismatches:
            missed.append(f"{len(self.mismatches)} ledger mismatch(es)")
        never = [k for k in kinds if not self.faults.get(k)]
        if never:
            missed.append(f"fault kinds never applied: {', '.join(never)}")
        return missed

    def table(self, title: str) -> str:
        """The figures as a plain-text table."""
        growth = self.rss_growth()
        rate = self.sessions / self.seconds * 60 if self.seconds else 0.0
        lines = [f"== {title}: {self.sessions} sessions in {self.seconds:.0f} s ({rate:.1f} sessions/min), "
                 f"Python objects on {self.allocator}",
                 "outcome                  count"]
        lines += [f"  {k:<22} {v:>5}" for k, v in sorted(self.outcomes.items())]
        lines.append("fault kind               applied")
        lines += [f"  {k:<22} {v:>5}" for k, v in self.faults.items()]
        lines.append("session   rss_mib   fds  threads  widgets  textures")
        lines += [f"  {s.session:>6} {s.rss_mib:>9.1f} {s.fds:>5} {s.threads:>8} {s.widgets:>8} {s.textures:>9}"
                  for s in self.samples]
        later = [(n, rss) for n, rss in self.readings if n >= self.warmup]
        error = slope_stderr_per_1000(later)
        lines.append(f"rss growth: {'n/a (fewer than two samples after the warm-up)' if growth is None else f'{growth:.2f} MiB per 1,000 sessions'}"
                     f"{'' if error is None else f' (standard error {error:.2f})'}"
                     f" ({len(later)} readings after the warm-up"
                     f"{'' if self.sample_growth() is None else f'; the samples alone: {self.sample_growth():.2f}'})")
        lines.append(f"crashes {self.crashes}, stuck {self.stuck}, ledger mismatches {len(self.mismatches)}")
        lines += [f"  mismatch {m.problem}: order {m.order_id} txn {m.txn_id}" for m in self.mismatches[:20]]
        return "\n".join(lines)


def growth_per_1000(samples: Sequence[Sample]) -> float | None:
    """The least-squares slope of RSS over sessions, in MiB per 1,000 sessions; None below two distinct sessions."""
    points = [(s.session, s.rss_mib) for s in samples]
    return slope_per_1000(points) if len({n for n, _ in points}) >= 2 else None


def slope_stderr_per_1000(points: Sequence[tuple[int, float]]) -> float | None:
    """The standard error of :func:`slope_per_1000` (from the residuals' scatter); None below three points."""
    n = len(points)
    if n < 3 or len({x for x, _ in points}) < 2:
        return None
    xs = [x for x, _ in points]
    slope, intercept = statistics.linear_regression(xs, [y for _, y in points])
    residual = sum((y - intercept - slope * x) ** 2 for x, y in points)
    mean_x = sum(xs) / n
    return (residual / (n - 2) / sum((x - mean_x) ** 2 for x in xs)) ** 0.5 * 1000


def slope_per_1000(points: Sequence[tuple[int, float]]) -> float:
    """The least-squares slope of (session, rss_mib) points in MiB per 1,000 sessions (two distinct sessions at least)."""
    return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope * 1000
