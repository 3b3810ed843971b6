"""The screens and states the audit renders, each put on the running app with demo data.

A scene is set up once (real transactions on the simulators, moved along by the same
service calls the screens make) and then drawn in every language and mode. The printing
screen is shown without starting production: its look does not depend on the job.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from kiosk.demo import people
from kiosk.demo.driver import UiDriver
from kiosk.services.workflow.steps import Step

log = logging.getLogger(__name__)

SCREENS_DIR = Path(__file__).resolve().parents[1] / "screens"
OPERATOR_NOTICE = "系统维护至 23:00，请到一楼服务台办理。"  # an operator's own words: data, shown as typed
WAIT_S = 20.0


@dataclass(frozen=True)
class Scene:
    """One render target: a screen, the item it shows ('' when none), the state ('' when plain)."""

    screen: str
    item: str
    state: str
    stage: Callable[["Stager"], None]
    refresh: Callable[["Stager"], None] | None = None  # before each render (a countdown kept running)


def screen_files() -> list[str]:
    """Every screen of kiosk/screens (a .kv layout with its handler), by name."""
    return sorted(p.stem for p in SCREENS_DIR.glob("*.kv")
                  if (SCREENS_DIR / f"{p.stem}.py").is_file() and p.stem not in ("common", "ime", "attract"))


class Stager:
    """Puts the running app on a screen in a state, with the demo people and values."""

    def __init__(self, driver: UiDriver) -> None:
        self.driver = driver
        self.app = driver.app
        self.runtime = driver.app.runtime
        self.catalog = self.runtime.catalog
        self.saved_unavailable: dict[str, str] | None = None  # what could run before a scene took the backend down

    # --- transactions moved along by service calls ---------------------------------------------
    def transaction(self, item_id: str, until: str) -> Any:
        """A real transaction of ``item_id`` at step ``until`` (identify, face, form, confirm, pay, produce, done)."""
        item = self.catalog.get(item_id)
        txn = self.runtime.engine.start(item_id)
        path = [getattr(s, "value", s) for s in txn.planned_path()]
        if until not in path and until != Step.DONE.value:
            return txn  # the item has no such step (a guide has no form): its first screen's data
        for _ in range(8):
            step = getattr(txn.step, "value", txn.step)
            if step == until:
                return txn
            if step == Step.IDENTIFY.value:
                txn.identify(card=people.card_for(item))
            elif step == Step.FACE.value:
                txn.face_check()
            elif step == Step.FORM.value:
                txn.submit_form(people.happy_values(item, txn.options))
            elif step == Step.CONFIRM.value:
                txn.confirm()
            elif step == Step.PRODUCE.value:
                self.app.produced(txn.produce())
            else:
                break
        raise RuntimeError(f"{item_id} did not reach step {until} (at {txn.step})")

    def show(self, screen: str, txn: Any = None, item_id: str = "") -> None:
        """Show ``screen`` for ``txn`` (and its item)."""
        app = self.app
        app.item = self.catalog.get(item_id) if item_id else (txn.item if txn is not None else None)
        app.txn = txn
        app.go(screen)
        self.driver.pump(1)  # the screen's on_enter runs a frame later (it may start a service call)
        self.settle()

    def settle(self) -> None:
        """Let background calls finish and the layout settle."""
        # The render that follows draws a frame, and one frame runs the layout to its end.
        self.driver.wait_until(lambda: not self.app.busy, "the screen to settle", WAIT_S)

    def leave(self) -> None:
        """Back home with no session, whatever the scene left behind."""
        app = self.app
        app.__dict__.pop("run_step", None)  # the printing scene's idle production call
        if self.saved_unavailable is not None:
            app._set_unavailable(self.saved_unavailable, False)
            self.saved_unavailable = None
        screen = app.sm.get_screen(app.sm.current)
        if "ime" in screen.ids:
            screen.ids.ime.close()
        app.error = None
        app.idle_warning = False
        app.attract_leave()
        if app.voice_full:
            app.toggle_voice()
        if app.txn is not None:
            app.end_session("cancel")
        app.go_home()
        self.driver.wait_until(lambda: not self.app.busy, "the session to end", WAIT_S)

    def voice_on(self) -> None:
        """Full read-out on, as the 语音引导 switch turns it on."""
        if not self.app.voice_full:
            self.app.toggle_voice()

    # --- filling in ------------------------------------------------------------------------
    def fill_form(self) -> None:
        """Type or choose the item's demo values on the form screen (options wait for their lookups)."""
        screen = self.app.sm.get_screen("form")
        item = self.app.txn.item
        for spec in item.fields:
            widget = screen.inputs[spec.name]
            value = people.happy_value(item, spec)
            if hasattr(widget, "hint_text"):
                widget.text = value or ""
                continue
            self.driver.wait_until(lambda w=widget, n=spec.name: w.children or screen.errors[n].text,
                                   f"options of {spec.name}", WAIT_S)
            buttons = list(reversed(widget.children))
            chosen = next((b for b in buttons if b.value == value), buttons[0] if buttons else None)
            if chosen is not None:
                chosen.state = "down"
        self.settle()

    def open_keyboard(self, screen_name: str, field: str, pinyin: str = "") -> None:
        """Focus ``field`` so the keyboard panel opens for it; type ``pinyin`` so candidates show."""
        screen = self.app.sm.get_screen(screen_name)
        screen.inputs[field].focus = True
        self.driver.pump(3)
        for letter in pinyin:
            screen.ids.ime.press(letter)
        self.settle()

    def warn_idle(self) -> None:
        """Make the idle warning show, its countdown a few seconds into it."""
        from kivy.clock import Clock

        app = self.app
        app.idle.touched()
        app.idle._last = Clock.get_boottime() - (app.idle.timeout_s - app.idle.warning_s + 2)  # 2 s into the warning
        self.driver.wait_until(lambda: app.idle_warning, "the idle warning", WAIT_S)
        self.driver.pump(2)


def _first_item(catalog: Any, test: Callable[[Any], bool]) -> Any:
    return next(item for item in catalog.items if test(item))


def scenes(catalog: Any) -> Iterator[Scene]:
    """Every screen of kiosk/screens, the form of each item and the states a resident meets."""
    from kiosk.errors import BackendUnavailable
    from kiosk.services.workflow.rules import refusal

    def txn_scene(screen: str, item_id: str, until: str, state: str = "",
                  then: Callable[[Stager], None] | None = None) -> Scene:
        def stage(st: Stager) -> None:
            st.show(screen, st.transaction(item_id, until))
            if then is not None:
                then(st)
        return Scene(screen, item_id, state, stage)

    flagship = catalog.home_items()[0].id  # the first home tile (H01 by default): the everyday walk
    yield Scene("home", "", "", lambda st: st.app.go_home())
    # The attract layer over home (kiosk.screens.attract: a layer like the keyboard panel, not a screen of its own).
    yield Scene("home", "", "attract", lambda st: (st.app.go_home(), st.app.attract_show(), st.settle()))
    # The backend down: its notice and every flagship's "unavailable" line (English in care mode then scrolls).
    yield Scene("home", "", "backend_down", _backend_down)
    # 语音引导 on: the switch down; the voice bar (repeat, volume, rate) under the header of the screens after home.
    yield Scene("home", "", "voice_guidance", lambda st: (st.voice_on(), st.app.go_home(), st.settle()))
    yield Scene("guide", flagship, "voice_guidance", lambda st: (st.voice_on(), st.app.open_item(flagship), st.settle()))
    for category in catalog.categories():
        yield Scene("category", "", category.code,
                    lambda st, c=category: (st.app.open_category(c), st.settle()))
    yield Scene("guide", flagship, "", lambda st: (st.app.open_item(flagship), st.settle()))
    travel = _first_item(catalog, lambda i: i.identity == "travel_document")
    face = _first_item(catalog, lambda i: i.identity == "id_card_and_face")
    yield txn_scene("identify", flagship, Step.IDENTIFY.value)
    yield txn_scene("identify", travel.id, Step.IDENTIFY.value, "travel_document")
    yield txn_scene("travel_entry", travel.id, Step.IDENTIFY.value,
                    then=lambda st: _fill_travel(st, travel))
    yield txn_scene("travel_entry", travel.id, Step.IDENTIFY.value, "keyboard_open",
                    then=lambda st: st.open_keyboard("travel_entry", "document_number"))
    yield txn_scene("reprint", flagship, Step.FORM.value)
    # Nobody before the camera: the live step waits (a face would be captured and the form shown mid-audit).
    yield Scene("face", face.id, "", lambda st: (_nobody_at_camera(st),
                                                 st.show("face", st.transaction(face.id, Step.FACE.value))))
    yield Scene("face", face.id, "face_not_recognised",
                lambda st: (_nobody_at_camera(st), st.show("face", st.transaction(face.id, Step.FACE.value)),
                            _face_missed(st)))
    yield Scene("face", face.id, "liveness_failed",
                lambda st: (_nobody_at_camera(st), st.show("face", st.transaction(face.id, Step.FACE.value)),
                            _face_missed(st, "liveness_failed")))
    for item in catalog.items:
        yield txn_scene("form", item.id, Step.FORM.value, then=Stager.fill_form)
    text_item = _first_item(catalog, lambda i: any(f.type == "text" for f in i.fields))
    text_field = next(f.name for f in text_item.fields if f.type == "text")
    yield txn_scene("form", text_item.id, Step.FORM.value, "keyboard_open",
                    then=lambda st: st.open_keyboard("form", text_field, "wang"))
    pad_item = _first_item(catalog, lambda i: any(f.type in ("digits", "phone") for f in i.fields))
    pad_field = next(f.name for f in pad_item.fields if f.type in ("digits", "phone"))
    yield txn_scene("form", pad_item.id, Step.FORM.value, "keypad_open",
                    then=lambda st: st.open_keyboard("form", pad_field))
    yield Scene("form", flagship, "idle_warning",
                lambda st: st.show("form", st.transaction(flagship, Step.FORM.value)), Stager.warn_idle)
    yield txn_scene("confirm", flagship, Step.CONFIRM.value)
    yield txn_scene("confirm", flagship, Step.CONFIRM.value, "voice_guidance", then=lambda st: (st.voice_on(), st.settle()))
    paid = _first_item(catalog, lambda i: (i.fee_cny or 0) > 0 and i.identity == "id_card")
    # Drawn as the order shows; its polling and countdown stopped so that nothing moves meanwhile.
    yield txn_scene("payment", paid.id, Step.PAY.value,
                    then=lambda st: st.app.sm.get_screen("payment").on_leave())
    yield Scene("printing", flagship, "", lambda st: _printing(st, flagship))
    yield txn_scene("done", flagship, Step.CONFIRM.value)
    query = _first_item(catalog, lambda i: i.kind == "query" and i.identity == "id_card"
                        and all(f.type != "lookup" for f in i.fields))
    yield txn_scene("done", query.id, Step.DONE.value, "results")
    yield Scene("error", flagship, "refusal",
                lambda st: _error(st, refusal("face_mismatch_send_to_counter")))
    yield Scene("error", flagship, "error", lambda st: _error(st, BackendUnavailable("connection refused")))
    yield Scene("out_of_service", "", "", _out_of_service)
    yield Scene("maintenance_pin", "", "", lambda st: (st.app.go("maintenance_pin"), st.settle()))
    yield Scene("maintenance", "", "", _maintenance)


def _fill_travel(st: Stager, item: Any) -> None:
    document = people.travel_document_for(item)
    screen = st.app.sm.get_screen("travel_entry")
    from kiosk.demo.forms import full_date

    values = {"document_number": document.document_number,
              "birth_date": full_date(document.birth_date, past=True),
              "expiry_date": full_date(document.expiry_date, past=False)}
    for name, widget in screen.inputs.items():
        widget.text = values.get(name, "")
    st.settle()


def _nobody_at_camera(st: Stager) -> None:
    camera = st.runtime.devices.get("camera")
    if camera is not None and hasattr(camera, "play"):
        camera.play("empty")


def _face_missed(st: Stager, reason: str = "face_mismatch") -> None:
    from kiosk.services.workflow.records import FaceResult

    st.app.sm.get_screen("face").show_result(FaceResult(False, 0.31 if reason == "face_mismatch" else 0.0, 2, reason))
    st.settle()


def _printing(st: Stager, item_id: str) -> None:
    txn = st.transaction(item_id, Step.CONFIRM.value)
    # Shown, not producing: the audit prints nothing. The screen asks for production once it has
    # entered (a frame later), so the call stays idle until the scene is left.
    st.app.run_step = lambda *_a, **_k: None
    st.show("printing", txn)


def _error(st: Stager, error: Any) -> None:
    st.app.error = error
    st.app.go("error")
    st.settle()


def _backend_down(st: Stager) -> None:
    app = st.app
    st.saved_unavailable = dict(app.unavailable)
    down = {item.id: "backend_unavailable" for item in st.catalog.items if item.needs_backend}
    app.go_home()
    app._set_unavailable({**app.unavailable, **down}, False)  # as a health answer does (the audit stops the polls)
    st.settle()


def _out_of_service(st: Stager) -> None:
    st.app.oos_notice = OPERATOR_NOTICE
    st.app.go("out_of_service")
    st.settle()


def _maintenance(st: Stager) -> None:
    st.app.go("maintenance")
    screen = st.app.sm.get_screen("maintenance")
    st.driver.wait_until(lambda: screen.devices_text, "the device status", WAIT_S)
    st.settle()
