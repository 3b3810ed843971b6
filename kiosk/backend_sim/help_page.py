"""The fleet page's help desk: every open help request, its latest masked screenshot and a form to answer.

Plain HTML like the rest of the page: the screenshot is an ``<img>`` from
``/fleet/help/TICKET/screenshot`` and the answer a ``<form method="post">`` to
``/fleet/help/TICKET/answer`` (field ``reply``), so a control-room browser needs no script.
"""
from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from kiosk.i18n import translate


def _(msgid: str, lang: str, **values: Any) -> str:
    return translate(msgid, lang).format(**values)


def render_help_section(requests: Sequence[Mapping[str, Any]], lang: str = "zh_CN") -> str:
    """The ``<section id="help">`` listing ``requests`` (helpdesk.records, open ones), oldest waiting first."""
    esc = html.escape
    out = [f'<section id="help"><h2>{esc(_("Residents asking for help", lang))} ({len(requests)})</h2>']
    if not requests:
        out.append(f'<p class="help-none">{esc(_("No open help requests.", lang))}</p></section>')
        return "".join(out)
    out.append('<div class="help-list">')
    for r in sorted(requests, key=lambda r: str(r.get("received_at") or "")):
        ticket = esc(str(r["ticket"]))
        where = " · ".join(esc(str(v)) for v in (r.get("item_id"), r.get("step")) if v)
        who = esc(str(r.get("identity_masked") or _("not shared", lang)))
        shot = (f'<img class="help-screenshot" alt="{esc(_("Masked screenshot", lang))}" width="240"'
                f' src="/fleet/help/{ticket}/screenshot">' if r.get("screenshots") else
                f'<p class="help-no-screenshot">{esc(_("No screenshot", lang))}</p>')
        out.append(
            f'<div class="help-request" data-ticket="{ticket}" data-terminal="{esc(str(r["terminal_id"]))}">'
            f"{shot}<div class=\"help-details\"><h3>{esc(_('Ticket {ticket}', lang, ticket=r['ticket']))}</h3>"
            f'<p class="help-where">{esc(str(r["terminal_id"]))} · {esc(_("screen", lang))}: '
            f'<span class="help-screen">{esc(str(r.get("screen") or ""))}</span>{" · " + where if where else ""}</p>'
            f'<p class="help-asked">{esc(_("Asked at {time}", lang, time=r.get("asked_at") or ""))}</p>'
            f'<p class="help-identity">{esc(_("Resident", lang))}: {who}</p>'
            f'<form class="help-answer" method="post" action="/fleet/help/{ticket}/answer">'
            f'<input type="hidden" name="lang" value="{esc(lang)}">'
            f'<textarea name="reply" rows="3" cols="40" maxlength="500" required></textarea>'
            f'<button type="submit">{esc(_("Send the answer", lang))}</button></form></div></div>')
    out.append("</div></section>")
    return "".join(out)
