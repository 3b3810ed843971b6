"""Counts for the operators' statistics: transactions per item and outcome, and satisfaction ratings.

SQLite (WAL) at ``<state_dir>/stats.sqlite3``, apart from the journal so pruning one never
touches the other. Rows are aggregated per local day: (day, item, outcome) -> count and
total duration; (day, rating, rated item) -> count. No transaction id, no time of day, no
identity and no free text is kept, so the table cannot say who came when; it only says how
many, like a station's monthly report. ``kiosk stats`` prints it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from kiosk import localtime
from kiosk.durable import connect_sqlite
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

DB_FILE = "stats.sqlite3"
OUTCOMES = ("completed", "refused", "cancelled", "failed")
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")  # the choices of the catalog's rating item
HELP_EVENTS = ("asked", "answered")  # a resident called the duty officer; the officer answered

_SCHEMA = """
CREATE TABLE IF NOT EXISTS item_counts (
    day TEXT NOT NULL, item_id TEXT NOT NULL, outcome TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, duration_s REAL NOT NULL DEFAULT 0, timed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, item_id, outcome));
CREATE TABLE IF NOT EXISTS help_counts (
    day TEXT NOT NULL PRIMARY KEY, asked INTEGER NOT NULL DEFAULT 0, answered INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rating_counts (
    day TEXT NOT NULL, rating TEXT NOT NULL, rated_item TEXT NOT NULL DEFAULT '',
    n INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, rating, rated_item));
"""


class StatsError(KioskError):
    """The statistics store cannot be read or a report's bounds are wrong."""

    code = "stats_error"
    message_en = "The statistics could not be read."
    exit_status = 2


def _day(at: float | None) -> str:
    """The local calendar day of unix time ``at`` (now when None): the station's day."""
    return localtime.stamp(at, "%Y-%m-%d")


def parse_day(text: str | None, name: str = "date") -> str | None:
    """``YYYY-MM-DD`` checked and normalised (None stays None). Raises StatsError."""
    if text is None or text == "":
        return None
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise StatsError(f"--{name} must be a date like 2026-11-01, got {text!r}") from None


@dataclass(frozen=True)
class ItemCounts:
    """One item's counts in a report."""

    item_id: str
    counts: Mapping[str, int]
    duration_s: float  # total over timed transactions
    timed: int

    @property
    def total(self) -> int:
        """All transactions of the item."""
        return sum(self.counts.values())

    @property
    def mean_duration_s(self) -> float | None:
        """Mean duration of the timed transactions (None when none was timed)."""
        return self.duration_s / self.timed if self.timed else None


@dataclass(frozen=True)
class StatsReport:
    """Counts per item and outcome, totals, and satisfaction over a day range."""

    date_from: str | None
    date_to: str | None
    items: tuple[ItemCounts, ...]
    ratings: Mapping[str, int]
    first_day: str | None = None  # the first and last day with counts in the range (None: nothing counted)
    last_day: str | None = None
    help_days: tuple[tuple[str, int, int], ...] = ()  # (day, asked, answered), oldest first

    @property
    def totals(self) -> dict[str, int]:
        """Transactions per outcome over every item, plus ``total``."""
        out = {o: 0 for o in OUTCOMES}
        for it in self.items:
            for outcome, n in it.counts.items():
                out[outcome] = out.get(outcome, 0) + n
        out["total"] = sum(out.values())
        return out

    @property
    def satisfaction_rate(self) -> float | None:
        """(satisfied + basically satisfied) / all ratings; None without ratings."""
        total = sum(self.ratings.values())
        if not total:
            return None
        return (self.ratings.get("satisfied", 0) + self.ratings.get("basically_satisfied", 0)) / total

    def to_dict(self, catalog: Any = None) -> dict[str, Any]:
        """The `kiosk stats --json` object; item names come from ``catalog`` when given."""
        items = []
        for it in self.items:
            entry: dict[str, Any] = {"item_id": it.item_id}
            if catalog is not None:
                try:
                    item = catalog.get(it.item_id)
                    entry.update(name_zh=item.name_zh, name_en=item.name_en)
                except KioskError:
                    pass  # an item since removed from the catalog keeps its counts
            mean = it.mean_duration_s
            entry.update(counts={o: it.counts.get(o, 0) for o in OUTCOMES}, total=it.total,
                         mean_duration_s=None if mean is None else round(mean, 1))
            items.append(entry)
        total = sum(self.ratings.values())
        rate = self.satisfaction_rate
        return {
            "from": self.date_from, "to": self.date_to, "first_day": self.first_day, "last_day": self.last_day,
            "items": items,
            "totals": self.totals,
            "satisfaction": {"counts": {r: self.ratings.get(r, 0) for r in RATINGS}, "total": total,
                             "rate": None if rate is None else round(rate, 4)},
            "help": {"days": [{"day": d, "asked": a, "answered": n} for d, a, n in self.help_days],
                     "asked": sum(a for _d, a, _n in self.help_days),
                     "answered": sum(n for _d, _a, n in self.help_days)},
        }


class Stats:
    """The persistent counters of one terminal. Thread-safe; a failing write is logged, never raised."""

    def __init__(self, state_dir: str | Path, *, create: bool = True) -> None:
        self.path = Path(state_dir) / DB_FILE
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if create or self.path.exists():
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = connect_sqlite(self.path, timeout=5.0)  # WAL + synchronous=FULL: a counted transaction survives a cut
        db.executescript(_SCHEMA)
        self._db = db

    # --- recording -------------------------------------------------------------------
    def record(self, item_id: str, outcome: str, duration_s: float | None = None, *, at: float | None = None) -> bool:
        """Count one finished transaction; returns False when it could not be stored (logged). Raises ValueError."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        timed = duration_s is not None
        return self._write(
            "INSERT INTO item_counts (day, item_id, outcome, n, duration_s, timed) VALUES (?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (day, item_id, outcome) DO UPDATE SET n = n + 1, duration_s = duration_s + excluded.duration_s,"
            " timed = timed + excluded.timed",
            (_day(at), str(item_id), outcome, max(0.0, float(duration_s)) if timed else 0.0, 1 if timed else 0))

    def record_rating(self, rating: str, rated_item: str = "", *, at: float | None = None) -> bool:
        """Count one satisfaction rating (``RATINGS``), optionally of an item id. Raises ValueError."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
        rated = str(rated_item or "").upper()
        if rated and not (len(rated) == 3 and rated[0].isalpha() and rated[1:].isdigit()):
            rated = ""  # only item ids are kept; anything else could be free text
        return self._write(
            "INSERT INTO rating_counts (day, rating, rated_item, n) VALUES (?, ?, ?, 1)"
            " ON CONFLICT (day, rating, rated_item) DO UPDATE SET n = n + 1", (_day(at), rating, rated))

    def record_help(self, event: str, *, at: float | None = None) -> bool:
        """Count a help request asked for, or one the duty officer answered (``HELP_EVENTS``). Raises ValueError."""
        if event not in HELP_EVENTS:
            raise ValueError(f"help event must be one of {', '.join(HELP_EVENTS)}, got {event!r}")
        return self._write(
            f"INSERT INTO help_counts (day, {event}) VALUES (?, 1)"
            f" ON CONFLICT (day) DO UPDATE SET {event} = {event} + 1", (_day(at),))

    def record_ended(self, ended: Any) -> None:
        """Listener for ``WorkflowEngine.on_end``: count the transaction and, for the rating item, its rating."""
        self.record(ended.item_id, ended.outcome, ended.duration_s)
        if ended.rating and ended.outcome == "completed":
            try:
                self.record_rating(ended.rating, ended.rated_item)
            except ValueError:
                log.warning("satisfaction rating not counted: unknown value")

    def _write(self, sql: str, params: Iterable[Any]) -> bool:
        with self._lock:
            try:
                if self._db is None:
                    self._open()
                assert self._db is not None
                with self._db:
                    self._db.execute(sql, tuple(params))
                return True
            except (sqlite3.Error, OSError) as exc:  # a full disk must not end a resident's transaction
                log.error("stats not recorded: %s", exc)
                return False

    # --- reading ---------------------------------------------------------------------
    def report(self, date_from: str | None = None, date_to: str | None = None) -> StatsReport:
        """Counts between two local days, both included (None = open). Raises StatsError."""
        lo, hi = parse_day(date_from, "from"), parse_day(date_to, "to")
        if lo and hi and lo > hi:
            raise StatsError(f"--from {lo} is after --to {hi}")
        where, params = [], []
        if lo:
            where.append("day >= ?")
            params.append(lo)
        if hi:
            where.append("day <= ?")
            params.append(hi)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            if self._db is None:
                return StatsReport(lo, hi, (), {})
            try:
                rows = self._db.execute(
                    f"SELECT item_id, outcome, SUM(n), SUM(duration_s), SUM(timed) FROM item_counts{cond}"
                    " GROUP BY item_id, outcome ORDER BY item_id", params).fetchall()
                ratings = self._db.execute(
                    f"SELECT rating, SUM(n) FROM rating_counts{cond} GROUP BY rating", params).fetchall()
                days = self._db.execute(
                    f"SELECT MIN(day), MAX(day) FROM (SELECT day FROM item_counts{cond}"
                    f" UNION ALL SELECT day FROM rating_counts{cond})", params * 2).fetchone()
                helped = self._db.execute(
                    f"SELECT day, asked, answered FROM help_counts{cond} ORDER BY day", params).fetchall()
            except sqlite3.Error as exc:
                raise StatsError(f"statistics store {self.path} unreadable: {exc}") from None
        by_item: dict[str, tuple[dict[str, int], float, int]] = {}
        for item_id, outcome, n, dur, timed in rows:
            counts, total_dur, total_timed = by_item.get(item_id, ({}, 0.0, 0))
            counts[outcome] = int(n)
            by_item[item_id] = (counts, total_dur + float(dur or 0), total_timed + int(timed or 0))
        items = tuple(ItemCounts(k, counts, dur, timed) for k, (counts, dur, timed) in sorted(by_item.items()))
        return StatsReport(lo, hi, items, {r: int(n) for r, n in ratings}, days[0], days[1],
                           tuple((str(d), int(a), int(n)) for d, a, n in helped))

    def close(self) -> None:
        """Close the database; safe to call twice."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


# --- `kiosk stats` -----------------------------------------------------------------------
def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def _item_name(catalog: Any, item_id: str, lang: str) -> str:
    try:
        item = catalog.get(item_id)
    except KioskError:
        return ""  # an item since removed from the catalog keeps its counts
    return item.name_zh if lang.startswith("zh") else item.name_en


def render_table(report: StatsReport, catalog: Any, terminal_id: str, lang: str = "zh_CN") -> str:
    """The station chief's table: terminal and real dates on top, item names whole, in the station's language."""
    from kiosk.i18n import translate

    def t(msgid: str, **values: Any) -> str:
        return translate(msgid, lang).format(**values)

    first, last = report.date_from or report.first_day, report.date_to or report.last_day
    span = t("{first} to {last}", first=first, last=last) if first and last else t("nothing counted yet")
    lines = [t("Self-service statistics of terminal {terminal}, {span}", terminal=terminal_id, span=span)]
    names = {it.item_id: _item_name(catalog, it.item_id, lang) for it in report.items}
    heads = [t("Item"), t("Name"), t("Completed"), t("Refused"), t("Cancelled"), t("Failed"), t("Total"),
             t("Avg s")]
    name_w = max([display_width(heads[1])] + [display_width(n) for n in names.values()])
    widths = [max(4, display_width(heads[0])), name_w] + [max(6, display_width(h)) for h in heads[2:]]

    def row(cells: list[str]) -> str:
        left = [_pad(cells[0], widths[0]), _pad(cells[1], widths[1])]
        right = [" " * max(0, w - display_width(c)) + c for c, w in zip(cells[2:], widths[2:])]
        return " ".join(left + right).rstrip()

    rule = "-" * display_width(row(heads))
    lines += [row(heads), rule]
    for it in report.items:
        c, mean = it.counts, it.mean_duration_s
        lines.append(row([it.item_id, names[it.item_id]] + [str(c.get(o, 0)) for o in OUTCOMES]
                         + [str(it.total), "" if mean is None else f"{mean:.0f}"]))
    tot = report.totals
    lines += [rule, row([t("All"), ""] + [str(tot[o]) for o in OUTCOMES] + [str(tot["total"]), ""])]
    rate = report.satisfaction_rate
    lines.append(t("Satisfaction: {satisfied} satisfied, {basically} basically satisfied, {dissatisfied} "
                   "dissatisfied; rate {rate} of {total}", satisfied=report.ratings.get("satisfied", 0),
                   basically=report.ratings.get("basically_satisfied", 0),
                   dissatisfied=report.ratings.get("dissatisfied", 0),
                   rate="n/a" if rate is None else f"{rate * 100:.1f}%", total=sum(report.ratings.values())))
    if not report.help_days:  # no resident called the duty officer in the range
        return "\n".join(lines)
    asked = sum(a for _d, a, _n in report.help_days)
    answered = sum(n for _d, _a, n in report.help_days)
    lines.append(t("Help requests: {asked} asked, {answered} answered", asked=asked, answered=answered))
    lines += [t("  {day}  asked {asked}  answered {answered}", day=day, asked=a, answered=n)
              for day, a, n in report.help_days]
    return "\n".join(lines)


def cli_stats(args: argparse.Namespace) -> int:
    """`kiosk stats [--from DATE] [--to DATE] [--state DIR] [--json]`: counts per item and outcome, satisfaction."""
    from kiosk.config import load
    from kiosk.services.catalog import Catalog

    cfg = load(getattr(args, "config", None))
    state = Path(args.state) if getattr(args, "state", None) else cfg.paths.root()
    stats = Stats(state, create=False)  # reading must not create a state folder
    try:
        report = stats.report(getattr(args, "date_from", None), getattr(args, "date_to", None))
    finally:
        stats.close()
    catalog = Catalog.load()
    if getattr(args, "json", False):
        print(json.dumps({"terminal": cfg.terminal.id, **report.to_dict(catalog)}, ensure_ascii=False, indent=2))
    else:
        print(render_table(report, catalog, cfg.terminal.id, cfg.ui.language))
    return 0
