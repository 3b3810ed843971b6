"""Payment: the order's QR code for the resident's phone, the amount and a countdown."""
from __future__ import annotations

import io
from typing import Any

import qrcode
from kivy.clock import Clock
from kivy.core.image import Image as CoreImage
from kivy.properties import BooleanProperty

from kiosk.screens.base import KioskScreen

NOTICE_S = 4.0  # how long "nothing was charged" stays up before the visit ends (not in care mode)


def qr_texture(payload: str) -> Any:
    """A Kivy texture of ``payload`` as a QR code."""
    buf = io.BytesIO()
    qrcode.make(payload, box_size=12, border=2).save(buf, format="PNG")
    buf.seek(0)
    return CoreImage(buf, ext="png").texture


class PaymentScreen(KioskScreen):
    """Creates the order on entry, then polls it until the workflow moves on."""

    spoken_ids = alert_ids = ("notice",)
    personal_ids = {"amount": "amount"}  # an amount owed

    closed = BooleanProperty(False)  # the order is cancelled: the button now leads home
    order: dict[str, Any] | None = None
    _poll: Any = None
    _tick: Any = None

    def on_kv_post(self, *_args: Any) -> None:
        """Relabel on a language switch."""
        self.app.bind(lang=self.relabel)

    def on_pre_enter(self, *_args: Any) -> None:
        """Nothing of the last order (its QR code, amount, notice) is drawn or spoken on the way in."""
        self.order = None
        self.ids.notice.text = ""
        self.closed = False
        self.ids.qr.texture = None
        self.ids.amount.text = ""
        self.seconds_left = int(self.app.kiosk_config.payment.timeout_s)
        self.relabel()

    def on_enter(self, *_args: Any) -> None:
        """Create the payment order."""
        self.app.run_step(self.app.txn.start_payment, on_result=self.show_order)

    def on_leave(self, *_args: Any) -> None:
        """Stop polling and counting."""
        for event in (self._poll, self._tick):
            if event is not None:
                event.cancel()
        self._poll = self._tick = None

    def forget(self) -> None:
        """The order's QR code and amount go."""
        self.ids.qr.texture = None
        self.ids.amount.text = ""

    def show_order(self, order: dict[str, Any]) -> None:
        """Draw the QR code and start polling the order."""
        self.order = order
        self.ids.qr.texture = qr_texture(order["qr_payload"])
        self.relabel()
        self.app.announce_payment(self.ids.amount.text)  # the amount, and that a phone pays
        interval = float(self.app.kiosk_config.payment.poll_interval_s)
        self._poll = Clock.schedule_interval(lambda _dt: self.poll(), interval)
        self._tick = Clock.schedule_interval(self._count_down, 1)

    def poll(self) -> None:
        """Ask the workflow whether the order is paid (nothing once the visit has ended)."""
        if self.app.txn is None or self.manager is None or self.manager.current != self.name:
            self.on_leave()  # the visit (or at least this screen) is over: stop asking
            return
        self.app.background(self.app.txn.poll_payment, on_result=self.order_update,
                            on_error=self.app.show_failure)

    def order_update(self, order: dict[str, Any]) -> None:
        """Paid (or given up): let the workflow's step decide the next screen."""
        self.order = order
        if order.get("status") != "pending":
            self.on_leave()
            self.app.follow()

    def _count_down(self, _dt: float) -> None:
        self.seconds_left = max(0, self.seconds_left - 1)
        self.relabel()
        if self.seconds_left == 0:
            self.cancel(timed_out=True)

    def cancel(self, timed_out: bool = False) -> None:
        """Give up on the order (the resident's touch, or time ran out)."""
        self.on_leave()
        self.app.run_step(self.app.txn.cancel_payment,
                          on_result=lambda _order: self.cancelled(timed_out))

    def cancelled(self, timed_out: bool) -> bool:
        """Nothing was charged: say so for a moment before the visit ends (True: shown here)."""
        txn = self.app.txn
        if txn is None or getattr(txn.outcome, "value", txn.outcome) != "cancelled":
            return False  # the payment arrived after all: the workflow goes on producing
        tr = self.app.tr
        self.ids.notice.text = tr("The payment was not received in time. Nothing was charged.") if timed_out \
            else tr("The payment was cancelled. Nothing was charged.")
        self.ids.qr.texture = None
        self.closed = True  # nothing left to cancel
        if not self.app.care:  # care mode: no timed auto-advance, the resident touches the button
            Clock.schedule_once(lambda _dt: self.leave() if self.app.txn is txn else None, NOTICE_S)
        return True

    def leave(self) -> None:
        """The order is cancelled and said so: end the visit."""
        self.closed = False
        self.app.follow()

    def relabel(self, *_args: Any) -> None:
        """Amount and countdown in the current language."""
        tr = self.app.tr
        if self.order is not None:
            amount = f"{int(self.order['amount_fen']) / 100:.2f}"
            self.ids.amount.text = tr("Amount: {amount} yuan").format(amount=amount)
        self.ids.countdown.text = tr("Time left to pay: {seconds} s").format(seconds=getattr(self, "seconds_left", 0))


SCREEN = PaymentScreen
