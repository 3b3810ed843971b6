"""The operators' fleet page of the simulator: one row per terminal, coloured green, amber or red.

Plain HTML (no script; the page reloads itself through a refresh meta) so a wall screen in
the control room needs nothing but a browser. The colour is decided here, from the newest
heartbeat's device states and supplies and from how long ago anything arrived:

- red: revoked, never heard from, silent for ``RED_AFTER_S``, a device down (offline,
  hardware error, absent) or a supply out;
- amber: silent for ``AMBER_AFTER_S``, a supply low, or a device waiting for a person
  (cover open: ``user_error``);
- green: otherwise.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from kiosk.i18n import translate

AMBER_AFTER_S = 150  # two and a half heartbeat periods of 60 s
RED_AFTER_S = 300  # the alert rule's "heartbeat missing" threshold
REFRESH_S = 10
DOWN_STATES = frozenset({"offline", "hardware_error", "no_device"})
COLOURS = {"green": "#2e7d32", "amber": "#f9a825", "red": "#c62828"}


@dataclass(frozen=True)
class TerminalView:
    """One terminal as the page shows it."""

    terminal_id: str
    colour: str  # green, amber, red
    alerts: tuple[str, ...]
    last_heartbeat_at: str | None
    age_s: float | None
    supplies: tuple[tuple[str, str], ...]  # ("receipt_printer paper", "out")


def _(msgid: str, lang: str, **values: Any) -> str:
    return translate(msgid, lang).format(**values)


def assess(row: Mapping[str, Any], now: datetime, lang: str = "zh_CN") -> TerminalView:
    """The colour and open alerts of one terminal row (as fleet.terminal_rows gives it)."""
    red: list[str] = []
    amber: list[str] = []
    heard = row.get("last_heartbeat_at")
    age = (now - datetime.fromisoformat(heard)).total_seconds() if heard else None
    if row.get("status") == "revoked":
        red.append(_("Terminal revoked", lang))
    if age is None:
        red.append(_("No heartbeat received yet", lang))
    elif age >= RED_AFTER_S:
        red.append(_("Heartbeat missing for {minutes} min", lang, minutes=int(age // 60)))
    elif age >= AMBER_AFTER_S:
        amber.append(_("Heartbeat late ({seconds} s)", lang, seconds=int(age)))
    hb = row.get("last_heartbeat") or {}
    supplies: list[tuple[str, str]] = []
    for device, st in sorted((hb.get("devices") or {}).items()):
        state = st.get("state", "")
        if state in DOWN_STATES:
            red.append(_("Device fault: {device} ({state})", lang, device=device, state=state))
        elif state == "user_error":
            amber.append(_("Device needs attention: {device} ({conditions})", lang, device=device,
                           conditions=", ".join(st.get("conditions") or ()) or state))
        for supply, level in sorted((st.get("supplies") or {}).items()):
            supplies.append((f"{device} {supply}", level))
            if level == "out":
                red.append(_("Paper out: {device}", lang, device=device) if supply == "paper"
                           else _("{supply} out: {device}", lang, supply=supply, device=device))
            elif level == "low":
                amber.append(_("Paper low: {device}", lang, device=device) if supply == "paper"
                             else _("{supply} low: {device}", lang, supply=supply, device=device))
    colour = "red" if red else ("amber" if amber else "green")
    return TerminalView(str(row["terminal_id"]), colour, tuple(red + amber), heard, age, tuple(supplies))


def render_fleet_page(rows: Sequence[Mapping[str, Any]], now: datetime, lang: str = "zh_CN", *,
                      help_requests: Sequence[Mapping[str, Any]] = ()) -> str:
    """The whole page for ``rows`` at time ``now``, open ``help_requests`` first (kiosk.backend_sim.help_page)."""
    from kiosk.backend_sim.help_page import render_help_section

    views = [assess(r, now, lang) for r in rows]
    counts = {c: sum(1 for v in views if v.colour == c) for c in COLOURS}
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang.startswith("zh") else "en"}"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        f"<title>{esc(_('Kiosk fleet', lang))}</title>",
        "<style>body{font-family:'WenQuanYi Micro Hei',sans-serif;margin:24px;background:#fafafa}"
        "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:6px 10px;text-align:left;"
        "vertical-align:top}th{background:#eee}.dot{display:inline-block;width:18px;height:18px;border-radius:9px;"
        "vertical-align:middle;margin-right:6px}ul{margin:0;padding-left:18px}"
        ".help-request{display:flex;gap:16px;border:2px solid #c62828;padding:10px;margin:8px 0;background:#fff}"
        ".help-screenshot{border:1px solid #999}</style></head><body>",
        f"<h1>{esc(_('Kiosk fleet', lang))}</h1>",
        f'<p id="summary">{esc(_("Updated {time}", lang, time=now.isoformat()))} · '
        + " · ".join(f'<span class="count-{c}">{esc(_(c.capitalize(), lang))}: {counts[c]}</span>' for c in COLOURS)
        + "</p>",
        render_help_section(help_requests, lang),
        '<table id="fleet"><thead><tr>'
        + "".join(f"<th>{esc(_(h, lang))}</th>" for h in ("Status", "Terminal", "Last heartbeat", "Supplies",
                                                          "Open alerts"))
        + "</tr></thead><tbody>",
    ]
    for v in views:
        age = _("never", lang) if v.age_s is None else _("{seconds} s ago", lang, seconds=int(v.age_s))
        supplies = "".join(f"<li>{esc(name)}: {esc(_(level, lang))}</li>" for name, level in v.supplies)
        alerts = "".join(f'<li class="alert">{esc(a)}</li>' for a in v.alerts)
        out.append(
            f'<tr class="terminal status-{v.colour}" data-terminal="{esc(v.terminal_id)}" data-status="{v.colour}">'
            f'<td class="status"><span class="dot" style="background:{COLOURS[v.colour]}"></span>'
            f"{esc(_(v.colour.capitalize(), lang))}</td>"
            f'<td class="terminal-id">{esc(v.terminal_id)}</td>'
            f'<td class="last-heartbeat">{esc(v.last_heartbeat_at or "-")}<br>{esc(age)}</td>'
            f'<td class="supplies"><ul>{supplies}</ul></td>'
            f'<td class="alerts"><ul>{alerts}</ul></td></tr>')
    out.append("</tbody></table></body></html>")
    return "\n".join(out)
