"""The technician's menu: each button calls one MaintenanceService method off the UI thread."""
from __future__ import annotations

from typing import Any, Callable

from kivy.factory import Factory
from kivy.properties import StringProperty

from kiosk import localtime
from kiosk.errors import KioskError
from kiosk.screens.base import KioskScreen

MAX_OWED_SHOWN = 8  # older ones stay in the journal and show once these are done


class MaintenanceScreen(KioskScreen):
    """Device status, test prints, paper reset, owed reprints, log export, restart, back to service."""

    devices_text = StringProperty("")
    paper_text = StringProperty("")
    owed_text = StringProperty("")
    message = StringProperty("")

    _shown: Any = None  # the last status read, worded again on a language switch

    def on_kv_post(self, *_args: Any) -> None:
        """Reword the status on a language switch."""
        self.app.bind(lang=lambda *_a: self._show(self._shown) if self._shown is not None else None)

    def on_pre_enter(self, *_args: Any) -> None:
        """Fresh status every time the menu opens."""
        self.message = ""
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
        self.paper_text = "\n".join(
            self.app.tr("{device}: paper refilled {count} times, last {time}").format(
                device=c.device, count=c.refills, time=localtime.stamp(c.refilled_at, "%Y-%m-%d %H:%M"))
            for c in counters.values())
        self.owed_text = (self.app.tr("{count} unfinished print(s)").format(count=len(owed)) if owed
                          else self.app.tr("No unfinished prints"))
        box = self.ids.owed_list
        box.clear_widgets()
        for p in owed[:MAX_OWED_SHOWN]:
            button = Factory.QuietButton(text=p.line())
            button.owed_key = p.key
            button.bind(on_release=lambda b: self.reprint(b.owed_key))
            box.add_widget(button)

    def _run(self, call: Callable[[], Any], done: Callable[[Any], str]) -> None:
        self.message = self.app.tr("Please wait...")

        def ok(result: Any) -> None:
            self.message = done(result)
            self.refresh()

        def failed(error: BaseException) -> None:
            code = error.code if isinstance(error, KioskError) else type(error).__name__
            text = error.message(self.app.lang) if isinstance(error, KioskError) else ""
            self.message = f"{text} ({code})"
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
        self._run(self.service.export_logs,
                  lambda r: self.app.tr("Logs exported to {path}").format(path=str(r.path)))

    def restart(self) -> None:
        """Restart the kiosk (systemd starts it again)."""
        self._run(self.service.restart, lambda _r: self.app.tr("Restarting..."))


SCREEN = MaintenanceScreen
