"""The operators' fleet page of the simulator: every terminal from its newest heartbeat, problems first.

Plain HTML (no script; the page reloads itself through a refresh meta, search and filter are
a GET form) so a wall screen in the control room needs nothing but a browser. The colour is
decided here, from the newest heartbeat's device states and supplies and from how long ago
anything arrived:

- red: revoked, never heard from, silent for ``RED_AFTER_S``, a device down (offline,
  hardware error, absent) or a supply out;
- amber: silent for ``AMBER_AFTER_S``, a supply low, a device waiting for a person
  (cover open: ``user_error``), or its last update rolled back;
- green: otherwise.

Rows are sorted red, amber, green, and within a colour the longest silent first. Each row is
built from one :class:`TerminalView` (``assess``), so a new column is a new field there and a
cell in ``_row``. Actions (maintenance, restart) are links to a confirmation page whose form
queues the command (views.py); nothing is queued by a single click.

Each terminal shows the release it runs and its last update; below, per release, the
rollout and how many terminals run it or rolled it back (fleet_releases.py).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

from kiosk.backend_sim.fleet_releases import Offered, release_views, render_release_table, update_cell
from kiosk.i18n import translate

AMBER_AFTER_S = 150  # two and a half heartbeat periods of 60 s
RED_AFTER_S = 300  # the alert rule's "heartbeat missing" threshold
REFRESH_S = 10
DOWN_STATES = frozenset({"offline", "hardware_error", "no_device"})
COLOURS = {"red": "#c62828", "amber": "#f9a825", "green": "#2e7d32"}  # in the order rows are shown
# The commands an operator may send from the page (the backend queues them, the terminal acknowledges).
ACTIONS = ("enter_maintenance", "leave_maintenance", "restart")
ACTION_TITLES = {"enter_maintenance": "Maintenance on", "leave_maintenance": "Maintenance off", "restart": "Restart"}
# English msgids of device and supply names and states (Chinese in hardware.po and fleet.po).
DEVICE_TITLES = {"id_card": "ID card reader", "pcsc": "Passport and permit reader", "receipt_printer": "Receipt printer",
                 "a4_printer": "A4 printer", "scanner": "QR code scanner", "camera": "Camera", "speaker": "Speaker",
                 "touchscreen": "Touch screen"}
STATE_TITLES = {"online": "Ready", "busy": "Busy", "offline": "Not responding", "hardware_error": "Hardware fault",
                "user_error": "Needs attention", "no_device": "Not installed"}
SUPPLY_TITLES = {"paper": "Paper", "toner": "Toner"}
CONDITION_TITLES = {"cover_open": "Cover open", "jam": "Paper jam"}
LEGEND = {"red": "Revoked, never heard from, silent for 5 min, a device down or a supply out",
          "amber": "Heartbeat late, a supply low, or a device waiting for a person",
          "green": "Working"}


@dataclass(frozen=True)
class TerminalView:
    """One terminal as the page shows it."""

    terminal_id: str
    colour: str  # green, amber, red
    alerts: tuple[str, ...]
    last_heartbeat_at: str | None
    age_s: float | None
    supplies: tuple[tuple[str, str], ...]  # ("Receipt printer Paper", "out"), names translated
    name: str = ""
    location: str = ""
    devices: tuple[tuple[str, str, str], ...] = ()  # (device title, state title, state) translated
    app_version: str = ""
    uptime_s: float | None = None
    last_transaction_at: str | None = None

    @property
    def sort_key(self) -> tuple[int, float, str]:
        """Red before amber before green; within a colour the longest silent (never heard: first) first."""
        return (list(COLOURS).index(self.colour), -(float("inf") if self.age_s is None else self.age_s),
                self.terminal_id)


def _(msgid: str, lang: str, **values: Any) -> str:
    return translate(msgid, lang).format(**values)


def _title(table: Mapping[str, str], key: str, lang: str) -> str:
    return translate(table[key], lang) if key in table else key


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
    devices: list[tuple[str, str, str]] = []
    for device, st in sorted((hb.get("devices") or {}).items()):
        state = str(st.get("state", ""))
        title = _title(DEVICE_TITLES, device, lang)
        state_title = _title(STATE_TITLES, state, lang)
        devices.append((title, state_title, state))
        if state in DOWN_STATES:
            red.append(_("Device fault: {device} ({state})", lang, device=title, state=state_title))
        elif state == "user_error":
            said = ", ".join(_title(CONDITION_TITLES, c, lang) for c in st.get("conditions") or ()) or state_title
            amber.append(_("Device needs attention: {device} ({conditions})", lang, device=title, conditions=said))
        for supply, level in sorted((st.get("supplies") or {}).items()):
            supply_title = _title(SUPPLY_TITLES, supply, lang)
            supplies.append((f"{title} {supply_title}", level))
            if level == "out":
                red.append(_("Paper out: {device}", lang, device=title) if supply == "paper"
                           else _("{supply} out: {device}", lang, supply=supply_title, device=title))
            elif level == "low":
                amber.append(_("Paper low: {device}", lang, device=title) if supply == "paper"
                             else _("{supply} low: {device}", lang, supply=supply_title, device=title))
    update = hb.get("update") if isinstance(hb.get("update"), dict) else {}
    if update.get("last_outcome") == "rolled_back":
        amber.append(_("Update rolled back: {version} ({reason})", lang, version=update.get("version") or "?",
                       reason=update.get("reason") or "?"))
    colour = "red" if red else ("amber" if amber else "green")
    uptime = hb.get("uptime_s")
    return TerminalView(str(row["terminal_id"]), colour, tuple(red + amber), heard, age, tuple(supplies),
                        name=str(hb.get("name") or ""), location=str(hb.get("location") or ""),
                        devices=tuple(devices), app_version=str(hb.get("app_version") or ""),
                        uptime_s=float(uptime) if isinstance(uptime, (int, float)) else None,
                        last_transaction_at=hb.get("last_transaction_at"))


def _local(stamp: str | None, now: datetime) -> str:
    """An ISO time as the station's local date and minute ('-' when there is none)."""
    if not stamp:
        return "-"
    try:
        return datetime.fromisoformat(stamp).astimezone(now.tzinfo).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return "-"


def _uptime(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return _("{days} d {hours} h", lang, days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min", lang, hours=hours, minutes=mins)
    return _("{minutes} min", lang, minutes=mins)


def matches(view: TerminalView, query: str, status: str) -> bool:
    """Whether a row is shown for the search text (id, name, location) and the status filter."""
    if status == "problems" and view.colour == "green":
        return False
    if status in COLOURS and view.colour != status:
        return False
    q = query.strip().lower()
    return not q or any(q in text.lower() for text in (view.terminal_id, view.name, view.location))


def _row(v: TerminalView, row: Mapping[str, Any], now: datetime, lang: str) -> str:
    esc = html.escape
    age = _("never", lang) if v.age_s is None else _("{seconds} s ago", lang, seconds=int(v.age_s))
    devices = "".join(f'<li class="device device-{esc(state)}">{esc(title)}: {esc(state_title)}</li>'
                      for title, state_title, state in v.devices)
    supplies = "".join(f"<li>{esc(name)}: {esc(_(level, lang))}</li>" for name, level in v.supplies)
    alerts = "".join(f'<li class="alert">{esc(a)}</li>' for a in v.alerts)
    actions = " ".join(
        f'<a class="action" href="/fleet/confirm?{esc(urlencode({"terminal": v.terminal_id, "kind": k, "lang": lang}))}"'
        f">{esc(_(ACTION_TITLES[k], lang))}</a>" for k in ACTIONS)
    return (f'<tr class="terminal status-{v.colour}" data-terminal="{esc(v.terminal_id)}" data-status="{v.colour}">'
            f'<td class="status"><span class="dot" style="background:{COLOURS[v.colour]}"></span>'
            f"{esc(_(v.colour.capitalize(), lang))}</td>"
            f'<td class="terminal-id">{esc(v.terminal_id)}</td>'
            f'<td class="name">{esc(v.name or "-")}</td>'
            f'<td class="location">{esc(v.location or "-")}</td>'
            f'<td class="devices"><ul>{devices}</ul></td>'
            f'<td class="supplies"><ul>{supplies}</ul></td>'
            f'{update_cell(row, lambda m: _(m, lang))}'
            f'<td class="uptime">{esc(_uptime(v.uptime_s, lang))}</td>'
            f'<td class="last-transaction">{esc(_local(v.last_transaction_at, now))}</td>'
            f'<td class="last-heartbeat">{esc(_local(v.last_heartbeat_at, now))}<br>{esc(age)}</td>'
            f'<td class="alerts"><ul>{alerts}</ul></td>'
            f'<td class="actions">{actions}</td></tr>')


STYLE = ("body{font-family:'WenQuanYi Micro Hei',sans-serif;margin:16px;background:#fafafa;font-size:14px}"
         "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;"
         "vertical-align:top}th{background:#eee;position:sticky;top:0}.dot{display:inline-block;width:14px;"
         "height:14px;border-radius:7px;vertical-align:middle;margin-right:4px}ul{margin:0;padding-left:16px}"
         "tr.status-red{background:#fdecea}tr.status-amber{background:#fff8e1}#legend span{margin-right:16px}"
         "a.action{display:inline-block;margin:1px 2px}.device-offline,.device-hardware_error,.device-no_device"
         "{color:#c62828;font-weight:bold}.device-user_error{color:#a86b00}"
         # devices and supplies as chips that wrap: 200 rows stay a screenful of rows, not of lists
         "td.devices ul,td.supplies ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:0 10px}"
         "td.devices{max-width:420px}td.supplies{max-width:300px}"
         "td.status,td.terminal-id,td.uptime,td.version{white-space:nowrap}"
         ".help-request{display:flex;gap:16px;border:2px solid #c62828;padding:10px;margin:8px 0;background:#fff}"
         ".help-screenshot{border:1px solid #999}")
COLUMNS = ("Status", "Terminal", "Name", "Location", "Devices", "Supplies", "App version", "Last update", "Uptime",
           "Last transaction", "Last heartbeat", "Open alerts", "Actions")


def render_fleet_page(rows: Sequence[Mapping[str, Any]], now: datetime, lang: str = "zh_CN", *,
                      codes: Sequence[Mapping[str, Any]] = (), query: str = "", status: str = "",
                      notice: str = "", releases: Mapping[str, Offered] | None = None,
                      help_requests: Sequence[Mapping[str, Any]] = ()) -> str:
    """The whole page for ``rows`` at time ``now``: problems first, filtered by ``query`` and ``status``.

    ``codes`` are the enrollment codes issued and not used yet; ``notice`` a line to show on top
    (a command just queued); ``releases`` what the served update repository offers (a table
    below: per release the rollout and how many terminals run it or rolled it back);
    ``help_requests`` the residents' open calls, shown above the terminals (kiosk.backend_sim.help_page).
    """
    from kiosk.backend_sim.help_page import render_help_section

    pairs = sorted(((assess(r, now, lang), r) for r in rows), key=lambda p: p[0].sort_key)
    views = [v for v, _row_data in pairs]
    counts = {c: sum(1 for v in views if v.colour == c) for c in COLOURS}
    shown = [(v, r) for v, r in pairs if matches(v, query, status)]
    esc = html.escape
    options = [("", _("All", lang)), ("problems", _("Problems only", lang))] + [
        (c, _(c.capitalize(), lang)) for c in COLOURS]
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang.startswith("zh") else "en"}"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        f"<title>{esc(_('Kiosk fleet', lang))}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(_('Kiosk fleet', lang))}</h1>",
        f'<p id="notice">{esc(notice)}</p>' if notice else "",
        f'<p id="summary">{esc(_("Updated {time}", lang, time=now.strftime("%Y-%m-%d %H:%M:%S")))} · '
        + " · ".join(f'<span class="count-{c}">{esc(_(c.capitalize(), lang))}: {counts[c]}</span>' for c in COLOURS)
        + f' · {esc(_("Shown: {shown} of {total}", lang, shown=len(shown), total=len(views)))}</p>',
        '<p id="legend">' + "".join(
            f'<span><span class="dot" style="background:{COLOURS[c]}"></span><b>{esc(_(c.capitalize(), lang))}</b>: '
            f"{esc(_(LEGEND[c], lang))}</span>" for c in COLOURS) + "</p>",
        render_help_section(help_requests, lang),
        '<form id="filter" method="get" action="/fleet">'
        f'<input type="hidden" name="lang" value="{esc(lang)}">'
        f'<label>{esc(_("Search", lang))} <input type="search" name="q" value="{esc(query)}" '
        f'placeholder="{esc(_("terminal id, name or location", lang))}"></label> '
        f'<label>{esc(_("Status", lang))} <select name="status">'
        + "".join(f'<option value="{v}"{" selected" if v == status else ""}>{esc(t)}</option>' for v, t in options)
        + f'</select></label> <button type="submit">{esc(_("Filter", lang))}</button></form>',
        '<table id="fleet"><thead><tr>' + "".join(f"<th>{esc(_(h, lang))}</th>" for h in COLUMNS)
        + "</tr></thead><tbody>",
    ]
    out += [_row(v, row, now, lang) for v, row in shown]
    out.append("</tbody></table>")
    out.append(render_release_table(release_views(rows, releases or {}), lambda m: _(m, lang)))
    out.append(f"<h2>{esc(_('Enrollment codes issued and not used', lang))}</h2>")
    if codes:
        out.append('<table id="codes"><thead><tr>' + "".join(
            f"<th>{esc(_(h, lang))}</th>" for h in ("Terminal", "Issued", "Expires")) + "</tr></thead><tbody>")
        for c in codes:
            expired = datetime.fromisoformat(c["expires_at"]) <= now
            out.append(f'<tr class="code{" expired" if expired else ""}" data-terminal="{esc(c["terminal_id"])}">'
                       f"<td>{esc(c['terminal_id'])}</td><td>{esc(_local(c['created_at'], now))}</td>"
                       f"<td>{esc(_local(c['expires_at'], now))}"
                       f"{' (' + esc(_('expired', lang)) + ')' if expired else ''}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append(f'<p id="codes-none">{esc(_("None", lang))}</p>')
    out.append("</body></html>")
    return "\n".join(x for x in out if x)


def render_confirm_page(terminal_id: str, kind: str, lang: str = "zh_CN") -> str:
    """The confirmation step of an action: what will be sent to which terminal, and a form that sends it."""
    esc = html.escape
    action = _(ACTION_TITLES[kind], lang)
    question = _("Send \u201c{action}\u201d to terminal {terminal}?", lang, action=action, terminal=terminal_id)
    back = f"/fleet?{urlencode({'lang': lang})}"
    return "\n".join([
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang.startswith("zh") else "en"}"><head><meta charset="utf-8">',
        f"<title>{esc(action)}</title><style>{STYLE}</style></head><body>",
        f'<h1 id="question">{esc(question)}</h1>',
        '<form id="confirm" method="post" action="/fleet/commands">',
        f'<input type="hidden" name="terminal" value="{esc(terminal_id)}">',
        f'<input type="hidden" name="kind" value="{esc(kind)}">',
        f'<input type="hidden" name="lang" value="{esc(lang)}">',
        '<input type="hidden" name="confirm" value="yes">',
        f'<button type="submit">{esc(_("Confirm", lang))}</button> <a href="{esc(back)}">{esc(_("Cancel", lang))}</a>',
        "</form></body></html>"])
