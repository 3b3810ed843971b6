"""The scripted resident calls the duty officer (flow option help=SCREEN); the scripted officer answers.

The resident touches 呼叫民警 in the header, confirms, and reads the ticket; the officer answers
through the simulator's loopback ``POST /api/v1/sim/help-requests/{ticket}/answer`` (as the
fleet page's form does); the resident reads the reply off the screen's banner, acknowledges
it and carries on with the flow. summary.json keeps the ticket (``help_ticket``) and the reply
as read on the screen (``help_reply``).
"""
from __future__ import annotations

from typing import Any

from kiosk.demo.driver import DemoError

# What the scripted officer says, by the screen the resident called from.
OFFICER_REPLIES = {
    "identify": "您好，我是值班民警。请把身份证放在屏幕下方的读卡区，证件照面朝上，读卡完成前不要移动。",
}
OFFICER_DEFAULT = "您好，我是值班民警。请按屏幕提示继续办理，需要时我会到现场协助您。"


class CallingForHelp:
    """The resident's call for help and the officer's scripted answer (mixed into Resident)."""

    driver: Any
    runtime: Any
    record: Any
    press: Any
    shot: Any

    def call_for_help(self, screen: str) -> None:
        """Touch 呼叫民警, confirm, let the officer answer, read the reply on the screen and acknowledge it.

        Raises DemoError when a step does not happen.
        """
        drv, app = self.driver, self.driver.app
        ids = app.root.ids
        self.press(drv.find("help_button"), "help_button")
        drv.wait_until(lambda: app.help_status == "asking", "the question before calling")
        self.shot(screen, again=True)
        self.press(ids.confirm_help_button, "confirm_help_button")
        drv.wait_until(lambda: app.help_status in ("open", "failed"), "the help ticket")
        if app.help_status != "open":
            raise DemoError(f"the call for help did not go through: {app.help_problem}")
        ticket = app.help_ticket
        self.record.help_ticket = ticket
        self.shot(screen, again=True)
        reply = OFFICER_REPLIES.get(screen, OFFICER_DEFAULT)
        self.officer_answers(ticket, reply)
        poll_s = float(self.runtime.config.help.poll_s)
        drv.wait_until(lambda: ids.help_reply.shown, "the officer's reply on the screen", 3 * poll_s + 20)
        drv.pump(2)
        read = ids.help_reply_text.text
        if read != reply:
            raise DemoError(f"the reply on the screen is not the officer's: {read!r}")
        self.record.help_reply = read
        self.shot(screen, again=True)
        self.press(ids.help_ack_button, "help_ack_button")
        drv.wait_until(lambda: not ids.help_reply.shown, "the reply banner to go")

    def officer_answers(self, ticket: str, reply: str) -> None:
        """The duty officer answers on the simulator (loopback, like the fleet page's form). Raises DemoError."""
        import requests

        if self.runtime.sim is None:
            raise DemoError("the scripted officer needs the embedded backend simulator")
        answer = requests.post(f"{self.runtime.sim.url}/api/v1/sim/help-requests/{ticket}/answer",
                               json={"reply": reply}, timeout=10)
        if answer.status_code != 200:
            raise DemoError(f"the officer could not answer: HTTP {answer.status_code}")
