"""The scripted resident: walks one item from the home screen to the end, one method per screen."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from kiosk.demo import people
from kiosk.demo.driver import DemoError, UiDriver, WidgetGone
from kiosk.demo.faults import DeviceDelays, ScriptedFaults
from kiosk.demo.flows import FlowScript
from kiosk.demo.helpcall import CallingForHelp
from kiosk.demo.keypad import KeypadHands
from kiosk.demo.forms import FormFilling, InputRejected
from kiosk.demo.summary import FlowRecord, Printouts, SpokenLog, response_figures, unused
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

MAX_SCREENS_PER_FLOW = 40
FACE_TRY_S = 60.0  # longest one face try may take: the scripted visit plays in real time
RESIDENT_PAUSE_S = 0.5  # the demo's resident before laying the card down and before paying (counted in paused_s)


class Resident(CallingForHelp, FormFilling):
    """Walks one item from the home screen to the end, recording what happened.

    What the resident does on a screen is its method ``at_<screen>`` (:meth:`at_identify`,
    :meth:`at_form`, ...), looked up by the screen's name; it returns True when the flow is
    over, and a screen without one ends the flow as unexpected. Every touch goes through
    :meth:`press`, so a resident with another input or manner overrides that, or one screen's
    method, and keeps the rest.
    """

    def __init__(self, driver: UiDriver, runtime: Any, out: Path, *, shots: str = "all") -> None:
        self.driver = driver
        self.hands: KeypadHands | None = None  # the keypad, in a flow with input=keypad
        self.shots = shots  # "all": every screen once; "ends": only outcomes, complaints and notices
        self.runtime = runtime
        self.out = out
        self.last_code = ""  # the verification code of the last document printed in this run
        self.delays = DeviceDelays(runtime)
        self.pause_s = RESIDENT_PAUSE_S  # a moment to find the card reader, or to take out the phone and pay

    def run(self, flow: FlowScript | str) -> FlowRecord:
        """Do one flow end to end; never raises (the record says what failed)."""
        script = flow if isinstance(flow, FlowScript) else FlowScript.parse(flow)
        drv = self.driver
        record = FlowRecord(script.item)
        self.record, self.script = record, script
        self._seen: set[str] = set()
        self.txn: Any = None
        printouts = Printouts(self.runtime, self.out)
        spoken = SpokenLog(self.runtime, self.out)
        touched_on = dict(drv.touches_on)
        touches_before, paused_before, keys_before = drv.touches, drv.paused_s, drv.keys
        answers_before = len(drv.response_ms)
        record.input = script.input
        self.hands = KeypadHands(drv) if script.keypad else None
        drv.answer_idle_warning = not script.leave
        self.identified_at: int | None = None
        started = time.monotonic()
        self.take_card_back()  # the resident still has the card in hand
        self.plug_headphones(script.private)
        camera_visit = self.stand_before_camera(script)
        faults = ScriptedFaults(self.runtime, script)
        try:
            item = self.runtime.catalog.get(script.item)
            faults.arm(item)
            self.person = script.person or people.person_for(item)
            record.person = self.person if item.needs_identity else ""
            if self.start_item(item):
                self.follow_steps(item)
        except InputRejected as rejected:
            record.outcome, record.reason, record.message = "input_rejected", "travel_details", str(rejected)
            record.shown = self.visible_text()
            self.press_id("cancel_button", "travel_entry")
            drv.wait_screen("home")
        except KioskError as err:
            record.outcome, record.reason = "failed", f"{err.code}: {err.detail}"
            log.error("demo flow %s failed: %s", script.item, err.detail or err.code)
            self.back_home()
        finally:
            faults.disarm()
            record.faults = faults.counts()
            wall = time.monotonic() - started
            record.wall_seconds = round(wall, 2)
            record.pause_seconds = round(drv.paused_s - paused_before, 2)
            record.device_delay_seconds = round(self.delays.since_last(), 2)
            record.seconds = round(max(0.0, wall - record.pause_seconds - record.device_delay_seconds), 2)
            record.touches = drv.touches - touches_before
            record.touches_by_screen = {screen: n - touched_on.get(screen, 0) for screen, n in drv.touches_on.items()
                                        if n > touched_on.get(screen, 0)}
            record.keys = drv.keys - keys_before
            record.touch_ms = response_figures(drv.response_ms[answers_before:])
            record.touches_after_identity = (drv.touches - self.identified_at) if self.identified_at is not None else 0
            record.documents, record.receipts = printouts.save(script.item)
            record.spoken, record.audio = spoken.save(script.item)  # after the machine time: speech is not part of it
            self.plug_headphones(False)
            self.stand_before_camera(None, camera_visit)
        return record

    def start_item(self, item: Any) -> bool:
        """Home → category → the item's guide, and start it; False when the guide ended the visit."""
        drv, record = self.driver, self.record
        drv.wait_screen("home")
        self.choose_mode()
        self.choose_voice()
        self.shot("home")
        self.open_item(item)
        if item.kind == "guide":
            # The guide screen is the whole service of a guide item.
            record.outcome, record.reason = "completed", "guide_shown"
            record.shown = self.visible_text()
        elif drv.app.sm.get_screen("guide").ids.start_button.disabled:
            record.outcome, record.reason = "unavailable", self.unavailable_reason(item)
        else:
            self.press_id("start_button")
            return True
        self.press_id("home_button")
        drv.wait_screen("home")
        return False

    def follow_steps(self, item: Any) -> None:
        """Act on each screen the transaction shows until the flow is over. Raises DemoError when lost."""
        drv, app = self.driver, self.driver.app
        for _step in range(MAX_SCREENS_PER_FLOW):
            # Printing is busy on purpose (the progress screen): photograph it meanwhile.
            drv.wait_until(lambda: drv.current == "printing" or not app.busy, "the next screen")
            drv.pump(2)
            screen = drv.current
            self.txn = app.txn or self.txn
            if self.identified_at is None and screen not in ("identify", "home"):
                self.identified_at = drv.touches
            self.shot(screen)
            if screen == self.script.help and not self.record.help_ticket:
                self.call_for_help(screen)
            if screen == self.script.leave:
                self.walk_away(screen)
                return
            if self.action_for(screen)(item):
                return
        raise DemoError(f"no end after {MAX_SCREENS_PER_FLOW} screens")

    def action_for(self, screen: str) -> Callable[[Any], bool]:
        """This resident's method for ``screen``. Raises DemoError for a screen it has none for."""
        action = getattr(self, f"at_{screen}", None)
        if action is None:
            raise DemoError(f"unexpected screen {screen}")
        return action

    # --- one method per screen: True when the flow is over -------------------------------
    def at_identify(self, item: Any) -> bool:
        """Present the card (or travel document) and wait for the kiosk to read it."""
        self.present_identity(item)
        self.driver.wait_leave("identify")
        return False

    def at_face(self, item: Any) -> bool:
        """Stand before the camera, touching nothing: the kiosk guides, checks liveness and captures by itself."""
        drv = self.driver
        txn = drv.app.txn
        tries = txn.face_tries if txn is not None else 0
        # One try: the visit, a liveness window of a few seconds, the compare; a loaded machine is slower.
        drv.wait_until(lambda: drv.current != "face" or (txn is not None and txn.face_tries > tries
                                                         and not drv.app.busy), "the face check", FACE_TRY_S)
        if drv.current == "face":
            self.shot("face", again=True)  # the miss and the tries left; the next try starts by itself
        return False

    def at_form(self, item: Any) -> bool:
        """Fill in the form and go on; a scripted wrong value that is refused ends the flow."""
        drv, record = self.driver, self.record
        if not self.fill_form(item):
            self.press_id("next_button")
        drv.wait_until(lambda: not drv.app.busy, "the form check")
        if drv.current != "form":
            return False
        form = drv.app.sm.current_screen
        complaints = {n: e.text for n, e in form.errors.items() if e.text}
        self.shot("form", again=True)
        record.shown = self.visible_text()
        if not self.script.values:
            raise DemoError(f"the form was not accepted ({complaints})")
        # A scripted wrong value: the complaint stays beside the field; the resident gives up.
        record.outcome, record.reason = "input_rejected", ",".join(complaints)
        record.message = "; ".join(complaints.values())
        self.press_id("cancel_button")
        drv.wait_screen("home")
        return True

    def at_confirm(self, item: Any) -> bool:
        """Confirm what the kiosk is about to do."""
        self.press_id("confirm_button")
        self.driver.wait_leave("confirm")
        return False

    def at_payment(self, item: Any) -> bool:
        """Pay by phone (or, with pay=no, let the payment time out)."""
        self.pay()
        self.driver.wait_leave("payment", timeout=60 + (0 if self.script.pay else
                                                        self.runtime.config.payment.timeout_s))
        return False

    def at_printing(self, item: Any) -> bool:
        """Wait while the kiosk produces and prints."""
        # An answer lost on the way is asked for again until backend.unknown_outcome_s.
        self.driver.wait_leave("printing", timeout=60 + float(self.runtime.config.backend.unknown_outcome_s))
        return False

    def at_reprint(self, item: Any) -> bool:
        """Take the documents owed from an earlier visit."""
        self.press_id("reprint_button")
        self.driver.wait_leave("reprint", timeout=60)
        return False

    def at_done(self, item: Any) -> bool:
        """Note the outcome and what was issued, take a query's slip, rate the visit, take the card, finish."""
        drv, app, record = self.driver, self.driver.app, self.record
        self.note_outcome()
        result = app.result
        record.reference = str(getattr(result, "reference", "") or "")
        codes = list(getattr(result, "verification_codes", ()) or ())
        record.verification_codes = codes
        record.display = [[str(line.get("label_en", "")), str(line.get("value_en", line.get("value", "")))]
                          for line in (getattr(result, "display", None) or ())]
        if codes:
            self.last_code = codes[-1]  # what a later verify flow checks
        done = app.sm.get_screen("done")
        if done.slip_state == "offered" and self.script.slip:
            # A query's results are on screen; this resident wants them on paper too.
            self.press_id("slip_button")
            drv.wait_until(lambda: done.slip_state != "printing", "the slip to print", 30)
            if done.slip_state != "printed":
                record.message = done.ids.problem.text
                self.shot("done", again=True)
        self.press_id("rate_satisfied")
        self.take_card_back()
        self.press_id("finish_button")
        drv.wait_screen("home")
        return True

    def at_error(self, item: Any) -> bool:
        """Note the refusal or error as the resident read it and where it sends them, then go home."""
        error, record = self.driver.app.error, self.record
        self.note_outcome()
        record.message = error.message("en") if error is not None else ""
        record.where = getattr(error, "where_en", "") or ""
        self.take_card_back()
        self.press_id("home_button")
        self.driver.wait_screen("home")
        return True

    def at_home(self, item: Any) -> bool:
        """Back home without an end screen: the visit was cancelled."""
        self.record.outcome = "cancelled"
        self.record.reason = getattr(self.txn, "reason", "") or "returned_home"
        return True

    # --- what the screens share ------------------------------------------------------------
    def press(self, widget: Any, what: str = "") -> None:
        """Touch ``widget`` (or, input=keypad, reach it with keys and press 5); raises DemoError when it did not
        take the press."""
        if self.hands is not None:
            self.hands.press(widget, what or getattr(widget, "text", "") or type(widget).__name__)
        else:
            self.driver.tap(widget, what)

    def press_id(self, widget_id: str, screen: str | None = None) -> None:
        """Press the widget with kv id ``widget_id`` on the current (or given) screen."""
        self.press(self.driver.find(widget_id, screen), widget_id)

    def note_outcome(self) -> None:
        """The transaction's outcome and reason (or the error's code) and what the screen shows."""
        app, record = self.driver.app, self.record
        txn = app.txn or self.txn
        outcome = getattr(getattr(txn, "outcome", None), "value", None)
        record.outcome = outcome or "failed"
        record.reason = (txn.reason if txn is not None else "") or (
            app.error.code if app.error is not None else "")
        record.shown = self.visible_text()

    def take_card_back(self) -> None:
        """Lift the ID card off the simulated reader."""
        reader = self.runtime.devices.get("id_card")
        if reader is not None and hasattr(reader, "remove"):
            reader.remove()

    def walk_away(self, screen: str) -> None:
        """Stop touching on ``screen``: the idle timeout (or the payment's expiry) ends the visit."""
        drv, record = self.driver, self.record
        limit = float(drv.app.idle.timeout_s) + float(self.runtime.config.payment.timeout_s) + 30  # doubled in care mode
        drv.wait_until(lambda: drv.current == "home" and not drv.app.busy, "the idle timeout", limit)
        self.shot("home", again=True)
        outcome = getattr(getattr(self.txn, "outcome", None), "value", None)
        record.outcome = outcome or "cancelled"
        record.reason = getattr(self.txn, "reason", "") or "walked_away"
        session = getattr(self.txn, "session", None)
        # The evidence that nothing of the resident stayed behind.
        record.shown = [f"session_ended={getattr(session, 'ended', None) is not None}",
                        f"identity_kept={getattr(session, 'identity', None) is not None}"]

    def unavailable_reason(self, item: Any) -> str:
        """Why the runtime says ``item`` cannot run now."""
        available = self.runtime.item_available(item)
        return getattr(available, "reason", "") or "unavailable"

    def back_home(self) -> None:
        """After a failure: end the session and wait for home (quietly, the record already says what failed)."""
        try:
            self.driver.app.end_session("cancel")
            self.driver.wait_screen("home", timeout=10)
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

    def choose_mode(self) -> None:
        """On the home screen, touch the care-mode switch when the flow asks for the other mode."""
        app = self.driver.app
        wanted = self.script.mode
        if wanted and (wanted == "care") != bool(app.care):
            self.press_id("care_button", "home")
            self.driver.pump(3)
            if (wanted == "care") != bool(app.care):
                raise DemoError(f"the care-mode switch did not turn mode {wanted} on")
        self.record.mode = "care" if app.care else "normal"

    def choose_voice(self) -> None:
        """On the home screen, touch 语音引导 when the flow asks for the other read-out."""
        app = self.driver.app
        wanted = self.script.voice
        if wanted and (wanted == "full") != bool(app.voice_full):
            self.press_id("voice_button", "home")
            self.driver.pump(3)
            if (wanted == "full") != bool(app.voice_full):
                raise DemoError(f"the 语音引导 switch did not turn read-out {wanted} on")

    def stand_before_camera(self, script: FlowScript | None, visit: str = "") -> str:
        """What the simulated camera will see on the face screen: the flow's face= visit (nobody when the
        resident walks away there), or ``visit`` again after the flow; returns the visit it replaced."""
        camera = self.runtime.devices.get("camera")
        if camera is None or not hasattr(camera, "play"):
            return ""
        before = camera.sequence.name
        if script is not None:
            visit = script.face or ("empty" if script.leave == "face" else "")
        if visit and visit != before:
            camera.play(visit)
        return before

    def plug_headphones(self, plugged: bool) -> None:
        """Plug headphones into the simulated speaker's jack (private listening), or pull them out."""
        speaker = self.runtime.devices.get("speaker")
        if speaker is not None and hasattr(speaker, "plug_headset"):
            speaker.plug_headset(plugged)

    def open_item(self, item: Any) -> None:
        """Home → the item's tile, or its category and then the item (its page, in care mode) → its guide."""
        drv = self.driver
        home = drv.app.sm.get_screen("home")
        # Home scrolls when its content is taller than the screen (English in care mode with the backend down).
        if item in self.runtime.home_items:
            tile = home.tile_for(item.id)
            drv.reveal(tile)
            self.press(tile, f"tile {item.id}")
            drv.wait_screen("guide")
            self.shot("guide")
            return
        button = home.category_tile(item.category)
        drv.reveal(button)
        self.press(button, f"category {item.category}")
        drv.wait_screen("category")
        self.shot("category")
        category = drv.app.sm.get_screen("category")
        while category.page < category.page_of(item.id):
            self.press_id("next_page", "category")  # care mode: five entries a page
        for attempt in range(3):
            target = category.button_for(item.id)
            drv.reveal(target)
            try:
                self.press(target, f"item {item.id}")
                break
            except WidgetGone:  # the list was redrawn under the finger (availability changed): look again
                if attempt == 2:
                    raise
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
        self.driver.wait_seconds(self.pause_s)  # the resident takes a moment to find the reader
        reader.place(people.card_for(item, self.person).id_number)

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
        drv.wait_seconds(self.pause_s)
        answer = requests.post(f"{self.runtime.sim.url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=10)
        if answer.status_code != 200:
            raise DemoError(f"the phone could not pay: HTTP {answer.status_code}")
