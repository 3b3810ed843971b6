"""The terminal's own clock face: dates and times in its time zone, not the machine's.

A kiosk decides "today" (a date field's range, whether an ID card has expired, the day a
transaction counts for, the time on a receipt) in the time zone of the station it
stands in, as the backend does (Beijing time). The machine's own zone may be UTC, and
then for eight hours a day its date is a day behind the backend's.
``terminal.timezone`` in the config sets it (default Asia/Shanghai); the runtime calls
:func:`set_zone` at start.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"
_zone: dt.tzinfo = ZoneInfo(DEFAULT_ZONE)
_clock: Callable[[], float] = time.time  # tests set an instant here instead of waiting for midnight


def zone_for(name: str) -> dt.tzinfo:
    """The tzinfo for an IANA name. Raises ValueError for a name the time zone database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def set_zone(name: str) -> None:
    """Use the IANA zone ``name`` from now on. Raises ValueError."""
    global _zone
    _zone = zone_for(name)


def zone() -> dt.tzinfo:
    """The terminal's time zone."""
    return _zone


def now(at: float | None = None) -> dt.datetime:
    """The terminal's wall-clock time, zone-aware (``at``: a Unix time instead of now)."""
    return dt.datetime.fromtimestamp(_clock() if at is None else at, _zone)


def today(at: float | None = None) -> dt.date:
    """The terminal's calendar day (``at``: a Unix time instead of now)."""
    return now(at).date()


def stamp(at: float | None = None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``now(at)`` formatted (receipts, screens, file names)."""
    return now(at).strftime(fmt)
