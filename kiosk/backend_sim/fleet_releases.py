"""The fleet page's view of updates: each terminal's release and last update, and per release its rollout.

Per release: the rollout percent (and whether it is halted) as the update repository the
simulator serves lists it (the newest targets metadata in its folder: the publisher's own
files, so no TUF client is needed here), how many terminals run it (their heartbeat's
``app_version``) and how many rolled it back (``update.last_outcome`` = ``rolled_back`` for
that ``update.version``). An operator who sees terminals rolling a release back halts it
with ``kiosk-release halt`` (the KioskUpdateRolledBack alert says the same).
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from packaging.version import InvalidVersion, Version

OUTCOME_TEXT = {"installed": "installed", "up_to_date": "up to date", "not_in_rollout": "not in rollout",
                "deferred": "deferred", "refused": "refused", "rolled_back": "rolled back"}
_TARGETS = re.compile(r"^(\d+)\.targets\.json$")


@dataclass(frozen=True)
class Offered:
    """One release as the repository's targets metadata lists it."""

    rollout_percent: int
    halted: bool


@dataclass(frozen=True)
class ReleaseView:
    """One release row of the page."""

    version: str
    rollout_percent: int | None  # None: not in the served repository (terminals run it all the same)
    halted: bool
    running: int
    rolled_back: int


def offered_releases(repo_folder: str | None) -> dict[str, Offered]:
    """{version: Offered} from the newest targets metadata of the served repository ({} without one)."""
    if not repo_folder:
        return {}
    meta = Path(repo_folder) / "metadata"
    numbered = sorted(((int(m[1]), p) for p in meta.glob("*.targets.json") if (m := _TARGETS.match(p.name))),
                      key=lambda t: t[0])
    path = numbered[-1][1] if numbered else meta / "targets.json"
    try:
        targets = json.loads(path.read_text(encoding="utf-8"))["signed"]["targets"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    found: dict[str, Offered] = {}
    for entry in targets.values() if isinstance(targets, dict) else ():
        custom = entry.get("custom") if isinstance(entry, dict) else None
        if isinstance(custom, dict) and isinstance(custom.get("version"), str):
            percent = custom.get("rollout_percent")
            found[custom["version"]] = Offered(percent if isinstance(percent, int) else 0, custom.get("halted") is True)
    return found


def _order(version: str) -> tuple[int, Any]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def terminal_update(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(running version, last outcome, the release it concerned, reason) of one terminal row ('' when unknown)."""
    hb = row.get("last_heartbeat") or {}
    update = hb.get("update") if isinstance(hb.get("update"), dict) else {}
    return (str(hb.get("app_version") or ""), str(update.get("last_outcome") or ""), str(update.get("version") or ""),
            str(update.get("reason") or ""))


def release_views(rows: Sequence[Mapping[str, Any]], offered: Mapping[str, Offered]) -> list[ReleaseView]:
    """One view per release offered or run, newest first."""
    running: dict[str, int] = {}
    rolled_back: dict[str, int] = {}
    for row in rows:
        version, outcome, concerned, _reason = terminal_update(row)
        if version:
            running[version] = running.get(version, 0) + 1
        if outcome == "rolled_back" and concerned:
            rolled_back[concerned] = rolled_back.get(concerned, 0) + 1
    versions = set(offered) | set(running) | set(rolled_back)
    return [ReleaseView(v, offered[v].rollout_percent if v in offered else None, v in offered and offered[v].halted,
                        running.get(v, 0), rolled_back.get(v, 0))
            for v in sorted(versions, key=_order, reverse=True)]


def render_release_table(views: Sequence[ReleaseView], tr: Callable[[str], str]) -> str:
    """The releases table (``tr`` translates a msgid into the page's language)."""
    esc = html.escape
    head = "".join(f"<th>{esc(tr(h))}</th>" for h in ("Release", "Rollout", "Terminals running it", "Rolled back"))
    out = [f"<h2>{esc(tr('Releases'))}</h2>", f'<table id="releases"><thead><tr>{head}</tr></thead><tbody>']
    for v in views:
        if v.rollout_percent is None:
            rollout = "-"
        else:
            rollout = f"{v.rollout_percent} %" + (f" ({tr('halted')})" if v.halted else "")
        out.append(f'<tr class="release" data-version="{esc(v.version)}" data-halted="{str(v.halted).lower()}">'
                   f'<td class="version">{esc(v.version)}</td><td class="rollout">{esc(rollout)}</td>'
                   f'<td class="running">{v.running}</td><td class="rolled-back">{v.rolled_back}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def update_cell(row: Mapping[str, Any], tr: Callable[[str], str]) -> str:
    """The terminal row's version and last-update cells."""
    esc = html.escape
    version, outcome, concerned, reason = terminal_update(row)
    text = tr(OUTCOME_TEXT[outcome]) if outcome in OUTCOME_TEXT else "-"
    if outcome and concerned and concerned != version:
        text += f" {concerned}"
    if reason:
        text += f" ({reason})"
    return (f'<td class="version">{esc(version or "-")}</td>'
            f'<td class="last-update" data-outcome="{esc(outcome)}">{esc(text)}</td>')
