"""The technician's menu: each button calls one MaintenanceService method off the UI thread.

Device names and states are shown as the config and `kiosk health` spell them (codes, exempt
from the one-language rule); everything said about them follows the screen's language.
"""
from __future__ import annotations

from typing import Any, Callable

from kivy.factory import Factory
from kivy.properties import StringProperty

from kiosk import localtime
from kiosk.errors import KioskError
from kiosk.screens.base import KioskScreen

MAX_OWED_SHOWN = 8  # older ones stay in the journal and show once these are done
# What a technician calls each printer whose paper is counted, and each kind of owed print.
PRINTER_NAMES = {"receipt_printer": "Receipt printer", "a4_printer": "Document printer"}
PRINT_KINDS = {"print_a4": "Document", "print_receipt": "Receipt"}


class MaintenanceScreen(KioskScreen):
    """Device status, test prints, paper reset, owed reprints, log export, restart, back to service."""

    devices_text = StringProperty("")
    paper_text = StringProperty("")
    owed_text = StringProperty("")
    message = StringProperty("")
    message_detail = StringProperty("")  # a code or a path that goes with the message (data)

    _shown: Any = None  # the last status read, worded again on a language switch

    def on_kv_post(self, *_args: Any) -> None:
        """Reword the status on a language switch."""
        self.app.bind(lang=lambda *_a: self._show(self._shown) if self._shown is not None else None)

    def on_pre_enter(self, *_args: Any) -> None:
        """Fresh status every time the menu opens."""
        self.message = self.message_detail = ""
        self.refresh()

    def on_leave(self, *_args: Any) -> None:
        """Leaving the menu by any way (idle timeout included) returns the kiosk to service."""
        if self.app.maintenance.active and self.manager.current not in ("maintenance", "maintenance_pin"):
            self.app.maintenance.leave()
            self.app.refresh_availability()

    @property
    def service(self) -> Any:
        """The app's MaintenanceService."""
        return self.app.maintenance

    def refresh(self, *_args: Any) -> None:
        """Device states, paper counters and owed prints as they are now."""
        self.app.background(lambda: (self.service.device_rows(), self.service.paper_counters(),
                                     self.service.owed_prints()), on_result=self._show)

    def _show(self, result: Any) -> None:
        self._shown = result
        rows, counters, owed = result
        self.devices_text = "\n".join(r.line() for r in rows)
        tr = self.app.tr
        self.paper_text = "\n".join(
            tr("{device}: paper refilled {count} times, last {time}").format(
                device=tr(PRINTER_NAMES.get(c.device, "Printer")), count=c.refills,
                time=localtime.stamp(c.refilled_at, "%Y-%m-%d %H:%M"))
            for c in counters.values())
        self.owed_text = (tr("{count} unfinished print(s)").format(count=len(owed)) if owed
                          else tr("No unfinished prints"))
        box = self.ids.owed_list
        box.clear_widgets()
        for p in owed[:MAX_OWED_SHOWN]:
            when = localtime.stamp(p.created_at, "%Y-%m-%d %H:%M")
            entry = Factory.OwedEntry(kind_text=tr(PRINT_KINDS.get(p.kind, "Print")),
                                      reference=f"{when}  {p.item_id}  {p.reference or p.document_id}")
            entry.owed_key = p.key
            entry.bind(on_release=lambda b: self.reprint(b.owed_key))
            box.add_widget(entry)

    def _run(self, call: Callable[[], Any], done: Callable[[Any], str],
             detail: Callable[[Any], str] = lambda _r: "") -> None:
        self.message, self.message_detail = self.app.tr("Please wait..."), ""

        def ok(result: Any) -> None:
            self.message, self.message_detail = done(result), detail(result)
            self.refresh()

        def failed(error: BaseException) -> None:
            code = error.code if isinstance(error, KioskError) else type(error).__name__
            self.message = error.message(self.app.lang) if isinstance(error, KioskError) else ""
            self.message_detail = code
            self.refresh()

        self.app.background(call, on_result=ok, on_error=failed)

    def test_receipt(self) -> None:
        """Print the receipt test page."""
        self._run(self.service.test_print_receipt, lambda _r: self.app.tr("Receipt test page printed"))

    def test_a4(self) -> None:
        """Print the A4 test page."""
        self._run(self.service.test_print_a4, lambda _r: self.app.tr("A4 test page printed"))

    def reset_paper(self) -> None:
        """Record a receipt paper refill."""
        self._run(lambda: self.service.reset_paper("receipt_printer"),
                  lambda c: self.app.tr("Paper counter reset ({count} refills)").format(count=c.refills))

    def reprint(self, key: str) -> None:
        """Print one owed document or receipt again."""
        self._run(lambda: self.service.reprint(key), lambda _r: self.app.tr("Reprinted"))

    def export_logs(self) -> None:
        """Copy the masked logs to the export folder (the USB stick)."""
        self._run(self.service.export_logs, lambda _r: self.app.tr("Logs exported to:"), lambda r: str(r.path))

    def restart(self) -> None:
        """Restart the kiosk (systemd starts it again)."""
        self._run(self.service.restart, lambda _r: self.app.tr("Restarting..."))


SCREEN = MaintenanceScreen
