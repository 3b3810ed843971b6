"""The scripted resident: walks one item from the home screen to the end, recording what happened."""
from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from kiosk import localtime
from kiosk.demo import people
from kiosk.demo.driver import DemoError, UiDriver
from kiosk.demo.flows import ANSWER_LOST, FlowScript
from kiosk.demo.summary import FlowRecord, unused
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

MAX_SCREENS_PER_FLOW = 40


class InputRejected(Exception):
    """The kiosk refused a value the script typed on purpose; the resident gives up."""


def _full_date(yymmdd: str, *, past: bool) -> str:
    """A date as printed on a data page (YYYYMMDD) from the MRZ's YYMMDD."""
    yy = int(yymmdd[:2])
    this_year = localtime.today().year
    century = (19 if 2000 + yy > this_year else 20) if past else 20
    return f"{century}{yymmdd}"


class Resident:
    """Walks one item from the home screen to the end, recording what happened."""

    def __init__(self, driver: UiDriver, runtime: Any, out: Path, *, shots: str = "all") -> None:
        self.driver = driver
        self.shots = shots  # "all": every screen once; "ends": only outcomes, complaints and notices
        self.runtime = runtime
        self.out = out
        self.last_code = ""  # the verification code of the last document printed in this run
        self.delayed_s = 0.0  # simulated device delays so far (delay_s options)
        self._delays_before = 0.0
        self._count_device_delays()

    def _count_device_delays(self) -> None:
        """Time every simulator's configured delay, so a flow's machine time can leave it out."""
        lock = threading.Lock()
        for _name, device in self.runtime.devices.all():
            pause = getattr(device, "_pause", None)
            if pause is None:
                continue

            def timed(fraction: float = 1.0, _pause: Any = pause) -> None:
                started = time.monotonic()
                try:
                    _pause(fraction)
                finally:
                    with lock:
                        self.delayed_s += time.monotonic() - started
            device._pause = timed

    def run(self, flow: FlowScript | str) -> FlowRecord:
        """Do one flow end to end; never raises (the record says what failed)."""
        script = flow if isinstance(flow, FlowScript) else FlowScript.parse(flow)
        item_id = script.item
        drv, app = self.driver, self.driver.app
        record = FlowRecord(item_id)
        self.record, self.script = record, script
        self._seen: set[str] = set()
        self.txn: Any = None
        a4 = self.runtime.devices.get("a4_printer")
        receipt = self.runtime.devices.get("receipt_printer")
        a4_before = len(a4.jobs) if a4 is not None else 0
        receipt_before = len(receipt.jobs) if receipt is not None else 0
        touches_before, paused_before = drv.touches, drv.paused_s
        drv.answer_idle_warning = not script.leave
        identified_at: int | None = None
        started = time.monotonic()
        reader = self.runtime.devices.get("id_card")
        if reader is not None and hasattr(reader, "remove"):
            reader.remove()  # the resident still has the card in hand
        applied_before = self.applied_faults()
        armed: list[tuple[Any, str]] = []
        try:
            item = self.runtime.catalog.get(item_id)
            armed = self.arm_faults(item)
            self.person = script.person or people.person_for(item)
            record.person = self.person if item.needs_identity else ""
            drv.wait_screen("home")
            self.shot("home")
            self.open_item(item)
            if item.kind == "guide":
                # The guide screen is the whole service of a guide item.
                record.outcome, record.reason = "completed", "guide_shown"
                record.shown = self.visible_text()
                drv.tap_id("home_button")
                drv.wait_screen("home")
                return record
            if drv.app.sm.get_screen("guide").ids.start_button.disabled:
                record.outcome, record.reason = "unavailable", self._unavailable_reason(item)
                drv.tap_id("home_button")
                drv.wait_screen("home")
                return record
            drv.tap_id("start_button")
            for _step in range(MAX_SCREENS_PER_FLOW):
                # Printing is busy on purpose (the progress screen): photograph it meanwhile.
                drv.wait_until(lambda: drv.current == "printing" or not app.busy, "the next screen")
                drv.pump(2)
                screen = drv.current
                self.txn = app.txn or self.txn
                if identified_at is None and screen not in ("identify", "home"):
                    identified_at = drv.touches
                self.shot(screen)
                if screen == script.leave:
                    self.walk_away(screen)
                    break
                if screen == "identify":
                    self.present_identity(item)
                    drv.wait_leave("identify")
                elif screen == "face":
                    drv.tap_id("capture_button")
                    drv.wait_until(lambda: not app.busy, "the face check")
                    if drv.current == "face":
                        self.shot("face", again=True)  # the miss and the tries left
                elif screen == "form":
                    if not self.fill_form(item):
                        drv.tap_id("next_button")
                    drv.wait_until(lambda: not app.busy, "the form check")
                    if drv.current == "form":
                        form = app.sm.current_screen
                        complaints = {n: e.text for n, e in form.errors.items() if e.text}
                        self.shot("form", again=True)
                        record.shown = self.visible_text()
                        if not script.values:
                            raise DemoError(f"the form was not accepted ({complaints})")
                        # A scripted wrong value: the complaint stays beside the field; the resident gives up.
                        record.outcome, record.reason = "input_rejected", ",".join(complaints)
                        record.message = "; ".join(complaints.values())
                        drv.tap_id("cancel_button")
                        drv.wait_screen("home")
                        break
                elif screen == "confirm":
                    drv.tap_id("confirm_button")
                    drv.wait_leave("confirm")
                elif screen == "payment":
                    self.pay()
                    drv.wait_leave("payment", timeout=60 + (0 if script.pay else
                                                            self.runtime.config.payment.timeout_s))
                elif screen == "printing":
                    # An answer lost on the way is asked for again until backend.unknown_outcome_s.
                    drv.wait_leave("printing", timeout=60 + float(self.runtime.config.backend.unknown_outcome_s))
                elif screen in ("done", "error"):
                    self.end(screen)
                    break
                elif screen == "reprint":
                    drv.tap_id("reprint_button")  # documents owed from an earlier visit
                    drv.wait_leave("reprint", timeout=60)
                elif screen == "home":
                    record.outcome = "cancelled"
                    record.reason = getattr(self.txn, "reason", "") or "returned_home"
                    break
                else:
                    raise DemoError(f"unexpected screen {screen}")
            else:
                raise DemoError(f"no end after {MAX_SCREENS_PER_FLOW} screens")
        except InputRejected as rejected:
            record.outcome, record.reason, record.message = "input_rejected", "travel_details", str(rejected)
            record.shown = self.visible_text()
            self.driver.tap_id("cancel_button", "travel_entry")
            self.driver.wait_screen("home")
        except KioskError as err:
            record.outcome, record.reason = "failed", f"{err.code}: {err.detail}"
            log.error("demo flow %s failed: %s", item_id, err.detail or err.code)
            self._back_home()
        finally:
            self.disarm_faults(armed)
            record.faults = self.fault_counts(applied_before)
            wall = time.monotonic() - started
            record.wall_seconds = round(wall, 2)
            record.pause_seconds = round(drv.paused_s - paused_before, 2)
            record.device_delay_seconds = round(self._device_delays(), 2)
            record.seconds = round(max(0.0, wall - record.pause_seconds - record.device_delay_seconds), 2)
            record.touches = drv.touches - touches_before
            record.touches_after_identity = (drv.touches - identified_at) if identified_at is not None else 0
            if a4 is not None:
                for n, job in enumerate(a4.jobs[a4_before:]):
                    target = unused(self.out / "documents" / f"{item_id}-{n + 1}.pdf")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(job.path, target)
                    record.documents.append(str(target.relative_to(self.out)))
            if receipt is not None:
                for n, data in enumerate(receipt.jobs[receipt_before:]):
                    target = unused(self.out / "receipts" / f"{item_id}-{n + 1}.bin")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    record.receipts.append(str(target.relative_to(self.out)))
        return record

    # --- scripted faults ----------------------------------------------------------------
    def applied_faults(self) -> dict[str, int]:
        """How often each fault was applied so far, as the simulators count it (backend and devices)."""
        counts: dict[str, int] = {}
        if self.runtime.sim is not None:
            counts.update(self.runtime.sim.app.faults.applied())
        for _name, device in self.runtime.devices.all():
            for kind, n in (device.applied() if hasattr(device, "applied") else {}).items():
                counts[kind] = counts.get(kind, 0) + n
        return counts

    def arm_faults(self, item: Any) -> list[tuple[Any, str]]:
        """Switch on the flow's scripted faults; returns the (device, fault) pairs to switch off after."""
        armed: list[tuple[Any, str]] = []
        for kind in self.script.faults:
            if kind == ANSWER_LOST:
                if self.runtime.sim is None:
                    raise DemoError("fault=answer_lost needs the embedded backend simulator")
                if item.operation:  # an item without an operation has no answer to lose: it never fires
                    self.runtime.sim.app.faults.update({"lose_answers_of": item.operation,
                                                        "lose_answers": self.script.lost})
                    armed.append((self.runtime.sim.app.faults, kind))
                continue
            for _name, device in self.runtime.devices.all():
                if kind in getattr(device, "FAULTS", ()):
                    # 1: an event fault fires once; a state fault (paper_out) stays on for the flow.
                    device.inject(kind, 1)
                    armed.append((device, kind))
        if self.script.chip:
            chip = self.runtime.devices.get("pcsc")
            if chip is None or self.script.chip not in getattr(chip, "FAULTS", ()):
                raise DemoError(f"chip={self.script.chip} needs the simulated chip reader")
            chip.inject(self.script.chip, 1)
            armed.append((chip, self.script.chip))
        return armed

    def disarm_faults(self, armed: list[tuple[Any, str]]) -> None:
        """Switch the flow's scripted faults off again (those that never fired too)."""
        for target, kind in armed:
            if kind == ANSWER_LOST:
                target.update({"lose_answers_of": "", "lose_answers": 0})
            else:
                target.clear(kind)

    def fault_counts(self, before: dict[str, int]) -> list[dict[str, Any]]:
        """``[{"kind", "count"}]``: the scripted faults (0 when they never fired), then any other that fired."""
        after = self.applied_faults()
        fired = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > 0}
        scripted = list(dict.fromkeys([*self.script.faults, *([self.script.chip] if self.script.chip else [])]))
        return ([{"kind": k, "count": fired.get(k, 0)} for k in scripted]
                + [{"kind": k, "count": n} for k, n in sorted(fired.items()) if k not in scripted])

    def end(self, screen: str) -> None:
        """The done or error screen: note the outcome and what was shown, then leave as a resident does."""
        drv, app, record = self.driver, self.driver.app, self.record
        txn = app.txn or self.txn
        outcome = getattr(getattr(txn, "outcome", None), "value", None)
        record.outcome = outcome or "failed"
        record.reason = (txn.reason if txn is not None else "") or (
            app.error.code if app.error is not None else "")
        record.shown = self.visible_text()
        reader = self.runtime.devices.get("id_card")
        if screen == "done":
            result = app.result
            record.reference = str(getattr(result, "reference", "") or "")
            codes = list(getattr(result, "verification_codes", ()) or ())
            record.verification_codes = codes
            record.display = [[str(line.get("label_en", "")), str(line.get("value", ""))]
                              for line in (getattr(result, "display", None) or ())]
            if codes:
                self.last_code = codes[-1]  # what a later verify flow checks
            done = app.sm.get_screen("done")
            if done.slip_state == "offered" and self.script.slip:
                # A query's results are on screen; this resident wants them on paper too.
                drv.tap_id("slip_button")
                drv.wait_until(lambda: done.slip_state != "printing", "the slip to print", 30)
                if done.slip_state != "printed":
                    record.message = done.ids.problem.text
                    self.shot("done", again=True)
            drv.tap_id("rate_satisfied")
            if reader is not None and hasattr(reader, "remove"):
                reader.remove()  # the resident takes the card back
            drv.tap_id("finish_button")
        else:
            error = app.error
            record.message = error.message("en") if error is not None else ""
            record.where = getattr(error, "where_en", "") or ""
            if reader is not None and hasattr(reader, "remove"):
                reader.remove()
            drv.tap_id("home_button")
        drv.wait_screen("home")

    def walk_away(self, screen: str) -> None:
        """Stop touching on ``screen``: the idle timeout (or the payment's expiry) ends the visit."""
        drv, record = self.driver, self.record
        limit = float(self.runtime.config.ui.idle_timeout_s) + float(self.runtime.config.payment.timeout_s) + 30
        drv.wait_until(lambda: drv.current == "home" and not drv.app.busy, "the idle timeout", limit)
        self.shot("home", again=True)
        outcome = getattr(getattr(self.txn, "outcome", None), "value", None)
        record.outcome = outcome or "cancelled"
        record.reason = getattr(self.txn, "reason", "") or "walked_away"
        session = getattr(self.txn, "session", None)
        # The evidence that nothing of the resident stayed behind.
        record.shown = [f"session_ended={getattr(session, 'ended', None) is not None}",
                        f"identity_kept={getattr(session, 'identity', None) is not None}"]

    def _device_delays(self) -> float:
        """Simulated device delay since the last call (the demo profile configures none)."""
        delta = self.delayed_s - self._delays_before
        self._delays_before = self.delayed_s
        return max(0.0, delta)

    def _unavailable_reason(self, item: Any) -> str:
        available = self.runtime.item_available(item)
        return getattr(available, "reason", "") or "unavailable"

    def _back_home(self) -> None:
        drv, app = self.driver, self.driver.app
        try:
            app.end_session("cancel")
            drv.wait_screen("home", timeout=10)
        except KioskError:
            pass

    def visible_text(self) -> list[str]:
        """Every text on show on the current screen (labels and buttons)."""
        screen = self.driver.app.sm.current_screen
        return [w.text for w in screen.walk() if isinstance(getattr(w, "text", None), str)
                and w.text.strip() and w.opacity > 0]

    def shot(self, screen: str, *, again: bool = False) -> None:
        """A screenshot of ``screen`` the first time the flow shows it (or ``again``)."""
        if screen in self._seen and not again:
            return
        if self.shots == "ends" and not again and screen not in ("done", "error"):
            return
        self._seen.add(screen)
        n = len(self.record.screenshots) + 1
        path = unused(self.out / "screenshots" / f"{self.record.item}-{n:02d}-{screen}.png")
        self.driver.screenshot(path)
        self.record.screenshots.append(str(path.relative_to(self.out)))

    def open_item(self, item: Any) -> None:
        """Home → the item's category → the item's guide."""
        drv = self.driver
        home = drv.app.sm.get_screen("home")
        button = next(b for b in home.ids.categories.children if b.category.code == item.category)
        drv.tap(button, f"category {item.category}")
        drv.wait_screen("category")
        self.shot("category")
        screen = drv.app.sm.get_screen("category")
        target = screen.button_for(item.id)
        drv.reveal(target)
        drv.tap(target, f"item {item.id}")
        drv.wait_screen("guide")
        self.shot("guide")

    def present_identity(self, item: Any) -> None:
        """Put the card (or travel document) on its reader."""
        if item.identity == "travel_document":
            from kiosk.hardware.simulators.vicc import DemoDocument

            document = people.travel_document_for(item, self.script.person)
            chip, scanner = self.runtime.devices.get("pcsc"), self.runtime.devices.get("scanner")
            if not (hasattr(chip, "place") and hasattr(scanner, "feed")):
                raise DemoError("the demo needs the simulated chip reader and scanner")
            chip.place(document)
            if self.script.typed_mrz:
                self.type_travel_details(document)
                return
            # The data page under the scanner: only the number and dates matter for BAC.
            scanner.feed(DemoDocument("P", "CHN", "DEMO", "RESIDENT", document.document_number, "CHN",
                                      document.birth_date, "<", document.expiry_date).mrz())
            return
        reader = self.runtime.devices.get("id_card")
        if reader is None or not hasattr(reader, "place"):
            raise DemoError("the demo needs the simulated ID card reader")
        self.driver.wait_seconds(0.5)  # the resident takes a moment to find the reader
        reader.place(people.card_for(item, self.person).id_number)

    def type_travel_details(self, document: Any) -> None:
        """The scanner cannot read the data page: type the number and dates, touch by touch.

        Dates are typed as the resident reads them on the page (YYYYMMDD). A scripted
        wrong value that the kiosk refuses ends the flow as ``input_rejected``.
        """
        drv = self.driver
        drv.tap_id("type_button", "identify")
        drv.wait_screen("travel_entry")
        self.shot("travel_entry")
        screen = drv.app.sm.get_screen("travel_entry")
        typed = {"document_number": document.document_number,
                 "birth_date": _full_date(document.birth_date, past=True),
                 "expiry_date": _full_date(document.expiry_date, past=False), **self.script.values}
        for name in ("document_number", "birth_date", "expiry_date"):
            widget = screen.inputs[name]
            drv.reveal(widget)
            drv.tap(widget, f"field {name}")
            panel = screen.ids.ime
            while (key := panel.next_key(typed[name])) is not None:
                drv.tap(key)
            drv.pump(2)
        self.close_keyboard(screen)
        drv.tap_id("read_button", "travel_entry")
        drv.wait_until(lambda: not drv.app.busy, "the chip read")
        drv.pump(2)
        if drv.current == "travel_entry":
            complaints = "; ".join(c for c in [screen.ids.problem.text] + [e.text for e in screen.errors.values()] if c)
            self.shot("travel_entry", again=True)
            if not self.script.values:
                raise DemoError(f"the typed travel document details were not accepted ({complaints})")
            raise InputRejected(complaints)

    def value_for(self, item: Any, spec: Any) -> str | None:
        """What the resident enters in ``spec``: the script's value, else the item's happy-path value."""
        if spec.name in self.script.values:
            return self.script.values[spec.name]
        if spec.name == "verification_code" and self.last_code:
            return self.last_code
        return people.happy_value(item, spec)

    def choose(self, spec: Any, grid: Any, errors: Any) -> None:
        """Touch the option with the wanted value (the first one when any will do)."""
        drv = self.driver
        drv.wait_until(lambda: grid.children or errors[spec.name].text, f"options of {spec.name}", 15)
        if not grid.children:
            raise DemoError(f"nothing to choose for {spec.name}: {errors[spec.name].text}")
        wanted = self.value_for(drv.app.txn.item, spec)
        for _attempt in range(5):
            buttons = list(reversed(grid.children))  # children are kept last-added first
            button = next((b for b in buttons if b.value == wanted), None) if wanted is not None else buttons[0]
            if button is None:
                raise DemoError(f"no option {wanted!r} for {spec.name}")
            drv.reveal(button)
            # An earlier choice may have asked for this list again: the option seen a moment
            # ago can have been replaced by a fresh one, so look again.
            if button.parent is grid:
                break
            drv.wait_until(lambda: grid.children, f"options of {spec.name} again", 15)
        drv.tap(button, f"option {button.value} of {spec.name}")

    def fill_form(self, item: Any) -> bool:
        """Choose and type the flow's values, field by field.

        True when the form submitted itself (a form that is a single choice).
        """
        from kivy.core.window import Window

        from kiosk.screens.ime import is_name_field

        drv = self.driver
        screen = drv.app.sm.get_screen("form")
        if screen._one_choice:
            spec = item.fields[0]
            self.choose(spec, screen.inputs[spec.name], screen.errors)
            return True
        for spec in item.fields:
            widget = screen.inputs[spec.name]
            scripted = spec.name in self.script.values
            if spec.type in ("choice", "lookup"):
                if spec.required or scripted:
                    later = [f for f in item.fields[item.fields.index(spec) + 1:] if f.type == "lookup"]
                    before = {f.name: {id(b) for b in screen.inputs[f.name].children} for f in later}
                    self.choose(spec, widget, screen.errors)
                    # The form asks again for the options of later lookups (they may depend on
                    # this choice): wait for the fresh ones before touching any.
                    for f in later:
                        grid = screen.inputs[f.name]
                        drv.wait_until(lambda g=grid, old=before[f.name]: (
                            (g.children and not {id(b) for b in g.children} & old)
                            or screen.errors[f.name].text), f"fresh options of {f.name}", 20)
            elif spec.required or scripted:
                value = self.value_for(item, spec)
                drv.pump(3)  # let the list settle to its size before looking for the field
                drv.reveal(widget)
                drv.tap(widget, f"field {spec.name}")
                panel = screen.ids.ime
                if spec.type == "text" and is_name_field(spec.name) and value and panel.can_type(value):
                    # A name is typed on the form's keyboard panel, touch by touch: pinyin, then the candidate.
                    while (key := panel.next_key(value)) is not None:
                        drv.tap(key)
                else:
                    Window.dispatch("on_textinput", value or "")
                drv.pump(2)
                self.close_keyboard(screen)
        return False

    def close_keyboard(self, screen: Any) -> None:
        """Touch the on-screen keyboard's done key, if the form opened one, so the form is whole again."""
        panel = screen.ids.get("ime")
        if panel is None or not getattr(panel, "open", False):
            return
        key = panel.ids.get("pad_done" if getattr(panel, "pad", False) else "done_key")
        if key is None:
            return
        self.driver.tap(key, "keyboard done")
        self.driver.pump(3)

    def pay(self) -> None:
        """Wait for the QR code, then pay from the 'phone' (the simulator's pay endpoint), unless scripted not to."""
        import requests

        drv = self.driver
        screen = drv.app.sm.get_screen("payment")
        order = drv.wait_until(lambda: screen.order, "the payment QR code")
        drv.pump(2)
        self.shot("payment")
        if not self.script.pay:
            # The resident walks off without paying: the countdown runs out, the order is cancelled.
            drv.wait_until(lambda: drv.current != "payment" or screen.ids.notice.text, "the payment timeout",
                           float(self.runtime.config.payment.timeout_s) + 30)
            self.record.shown = self.visible_text()
            self.shot("payment", again=True)
            return
        if self.runtime.sim is None:
            raise DemoError("paying needs the embedded backend simulator")
        drv.wait_seconds(0.5)
        answer = requests.post(f"{self.runtime.sim.url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=10)
        if answer.status_code != 200:
            raise DemoError(f"the phone could not pay: HTTP {answer.status_code}")
