"""The touch UI on the real services, driven by touches through Kivy's input path."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from kiosk.demo.driver import DemoError, WidgetGone
from kiosk.hardware.simulators.cards import DEMO_CARDS

pytestmark = pytest.mark.ui

WANG = DEMO_CARDS[0]


def visible_text(widget: Any) -> str:
    """Every label text shown under ``widget`` (buttons included), newline separated."""
    return "\n".join(w.text for w in widget.walk() if isinstance(getattr(w, "text", None), str)
                     and w.opacity > 0)


def screen_text(ui: Any) -> str:
    return visible_text(ui.app.sm.current_screen)


def open_guide(ui: Any, item_id: str) -> None:
    """Home → category → item, by touch."""
    app = ui.app
    item = app.runtime.catalog.get(item_id)
    home = app.sm.get_screen("home")
    ui.tap(next(b for b in home.ids.categories.children if b.category.code == item.category))
    ui.wait_screen("category")
    category = app.sm.get_screen("category")
    # Far down the list: scrolled into view first, as a resident would (looked up again if the list is redrawn).
    ui.tap_entry(lambda: category.button_for(item_id), item_id)
    ui.wait_screen("guide")


def settle_availability(ui: Any) -> None:
    """Every availability answer already asked for has landed: its thread has finished and the frame that applies it
    has run. The kiosk asks every few seconds, in a thread; an answer asked for just before a test changed what the
    health monitor says would otherwise land after the test's own and undo it."""
    for thread in threading.enumerate():
        if thread.name == "kiosk-availability":
            thread.join(10)
    ui.pump(2)


def start_h01(ui: Any) -> None:
    open_guide(ui, "H01")
    ui.tap_id("start_button")
    ui.wait_screen("identify")


def test_language_switch_on_home_changes_visible_text(ui: Any) -> None:
    assert "欢迎使用" in screen_text(ui)
    ui.tap_id("language_button", "home")
    assert ui.app.lang == "en"
    text = screen_text(ui)
    assert "Welcome. Please choose a service." in text and "欢迎使用" not in text
    assert "Household" in text  # category names follow the language too
    ui.tap_id("language_button", "home")
    assert "欢迎使用" in screen_text(ui)


def test_guide_shows_materials_fee_time_and_switches_language(ui: Any) -> None:
    open_guide(ui, "H01")
    item = ui.app.runtime.catalog.get("H01")
    text = screen_text(ui)
    assert item.name_zh in text and "所需材料" in text and "预计用时" in text and "费用" in text
    ui.tap_id("language_button")  # the language button of the guide screen itself
    text = screen_text(ui)
    assert item.name_en in text and "Materials" in text and "Expected time" in text
    assert item.name_zh not in text


def test_every_screen_has_a_language_button_and_large_targets(ui: Any) -> None:
    from kivy.uix.button import Button

    app = ui.app
    for name in ("home", "category", "guide", "identify", "reprint", "face", "form", "confirm", "payment",
                 "printing", "done", "error", "out_of_service"):
        screen = app.screen(name)
        buttons = [w for w in screen.walk() if isinstance(w, Button)]
        assert any(getattr(b, "text", "") in ("English", "中文") for b in buttons), name
        for button in buttons:
            if button.opacity > 0 and button.size_hint_y is None:
                assert button.height >= 120, (name, button.text)
                assert button.font_size >= 40, (name, button.text)


def test_covered_button_does_not_react(ui: Any) -> None:
    start_h01(ui)
    txn = ui.app.txn
    ui.app.busy = ui.app.busy_overlay = True  # as while a service call runs
    ui.pump(2)
    with pytest.raises(DemoError, match="covered") as refused:
        ui.tap_id("cancel_button")
    assert ui.current == "identify" and txn.outcome is None
    # The error says what took the touch instead: the overlay, not the button.
    under = str(refused.value).split("under the finger: ")[1].rstrip(")")
    assert under.startswith("Overlay"), under
    ui.app.busy = ui.app.busy_overlay = False
    ui.pump(2)
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
    assert txn.outcome.value == "cancelled" and txn.session.ended is not None


def test_button_scrolled_out_of_view_is_refused_until_scrolled_to(ui: Any) -> None:
    app = ui.app
    # Not a test of the idle time: in full-suite runs the warning has covered the last touch
    # (see the driver's diagnostic); a resident who is there answers it and touches again.
    ui.answer_idle_warning = True
    home = app.sm.get_screen("home")
    ui.tap(next(b for b in home.ids.categories.children if b.category.code == "H"))
    ui.wait_screen("category")
    screen = app.sm.current_screen
    last = screen.button_for("H22")  # far down a list of 22 items
    with pytest.raises(DemoError, match="off screen"):
        ui.tap(last)
    screen.ids.scroller.scroll_to(last, padding=40, animate=False)  # the resident scrolls
    ui.pump(3)
    ui.tap(last)
    ui.wait_screen("guide")
    assert app.item.id == "H22"


def test_an_entry_redrawn_before_the_touch_is_looked_up_again(ui: Any) -> None:
    app = ui.app
    home = app.sm.get_screen("home")
    ui.tap(next(b for b in home.ids.categories.children if b.category.code == "H"))
    ui.wait_screen("category")
    category = app.sm.current_screen
    old = category.button_for("H02")
    category.fill()  # what an availability change does: the list is built again
    with pytest.raises(WidgetGone, match="redrawn"):
        ui.tap(old, "H02")  # never a touch at the old entry's list coordinates
    assert app.sm.current == "category"
    lookups: list[Any] = []

    def find() -> Any:
        entry = category.button_for("H02")
        if not lookups:
            category.fill()  # redrawn once more between the lookup and the touch
        lookups.append(entry)
        return entry

    ui.tap_entry(find, "H02")
    ui.wait_screen("guide")
    assert app.item.id == "H02" and len(lookups) == 2


def test_card_read_leads_to_form_and_confirm_with_masked_identity(ui: Any) -> None:
    start_h01(ui)
    ui.app.runtime.devices.get("id_card").place(WANG.id_number)
    ui.wait_screen("form")
    form = ui.app.sm.current_screen
    options = form.inputs["purpose"].children
    ui.tap(options[-1])  # a one-choice form submits on the touch
    ui.wait_screen("confirm")
    text = screen_text(ui)
    assert "王*明" in text and WANG.name not in text and WANG.id_number not in text
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_escape_f1_and_window_close_do_not_leave_the_kiosk(ui: Any) -> None:
    from kivy.base import EventLoop
    from kivy.config import Config
    from kivy.core.window import Window

    start_h01(ui)
    for key in (27, 282, 1001):  # Escape, F1, Android back
        Window.dispatch("on_keyboard", key, 0, None, [])
        ui.pump(2)
    assert Window.dispatch("on_request_close") is True
    ui.pump(2)
    assert EventLoop.status == "started" and ui.current == "identify"
    assert ui.app._app_settings is None  # the settings panel was never built
    assert Config.getint("kivy", "exit_on_escape") == 0
    assert "disable_multitouch" in Config.get("input", "mouse")


def test_idle_timeout_warns_then_returns_home_and_wipes_the_session(ui: Any) -> None:
    start_h01(ui)
    txn = ui.app.txn
    folder = txn.session.folder
    assert folder.exists()
    root = ui.app.root
    ui.wait_until(lambda: ui.app.idle_warning, "the idle warning", 20)
    ui.pump(2)
    assert root.ids.idle_overlay.opacity == 1 and any(ch.isdigit() for ch in root.ids.idle_countdown.text)
    assert root.ids.idle_wipe.text == "尚未读取您的任何信息，本次办理将直接结束。"  # no card read yet
    with pytest.raises(DemoError, match="covered"):  # the warning covers the screen's buttons
        ui.tap_id("cancel_button")
    assert ui.app.idle_warning and txn.outcome is None and ui.current == "identify"
    ui.tap(root.ids.continue_button)  # still here: the timer starts over
    assert not ui.app.idle_warning and ui.current == "identify"
    ui.wait_until(lambda: ui.app.idle_warning, "the idle warning again", 20)
    ui.app.lang = "en"  # as the audit switches it: the notice follows at once, not at the timer's next tick
    assert ui.app.idle_wipe.startswith("Nothing of yours")
    ui.app.lang = "zh_CN"
    assert ui.app.idle_wipe.startswith("尚未读取")
    ui.wait_screen("home", timeout=30)  # nobody touches any more: the 20 s of the warning run out
    assert ui.app.txn is None
    assert txn.outcome.value == "cancelled" and txn.reason == "timeout"
    assert txn.session.ended is not None and txn.session.identity is None and not folder.exists()


def test_backend_down_marks_items_unavailable_keeps_guides_and_recovers(ui: Any) -> None:
    from kiosk.backend_sim.server import serve

    app, runtime = ui.app, ui.app.runtime
    sim = runtime.sim
    port = sim.port
    sim.stop()
    try:
        runtime.backend_up(fresh=True)  # skip the probe's cache; the screens still find out by polling
        ui.wait_until(lambda: app.backend_down, "the backend to be seen down", 20)
        assert "公安业务系统暂时无法连接" in screen_text(ui)
        open_guide(ui, "H01")
        guide = app.sm.current_screen
        assert guide.ids.start_button.disabled
        assert "暂停办理" in guide.ids.unavailable.text
        assert guide.ids.materials.text  # the guide stays readable
        with pytest.raises(DemoError):
            ui.tap_id("start_button")
        assert ui.current == "guide" and app.txn is None
        guide_item = app.runtime.catalog.get("H01")
        assert not app.is_available(guide_item)
    finally:
        runtime.sim = serve("127.0.0.1", port, db_path=str(runtime.state_dir / "backend-sim.sqlite3"))
    ui.wait_until(lambda: not app.backend_down and not guide.ids.start_button.disabled,
                  "the kiosk to recover by itself", 25)
    assert guide.ids.unavailable.text == ""


def test_printer_out_of_paper_then_the_next_card_read_offers_the_reprint(ui: Any) -> None:
    app = ui.app
    a4 = app.runtime.devices.get("a4_printer")
    reader = app.runtime.devices.get("id_card")
    jobs = len(a4.jobs)
    start_h01(ui)
    reader.place(WANG.id_number)
    ui.wait_screen("form")
    ui.tap(app.sm.current_screen.inputs["purpose"].children[-1])
    ui.wait_screen("confirm")
    a4.inject("paper_out", True)
    try:
        ui.tap_id("confirm_button")
        ui.wait_screen("done")
        assert "缺纸" in app.sm.current_screen.ids.problem.text  # what happened, and how to reprint
        assert len(a4.jobs) == jobs
        reader.remove()
        ui.tap_id("finish_button")
        ui.wait_screen("home")
    finally:
        a4.clear("paper_out")
        a4.refill()
    # The printer as it is now: a poll running across the refill (paper_out cleared, the tray still empty) read it as
    # unusable, and its answer came after this test had seen H01 available again.
    app.runtime.health.poll()
    settle_availability(ui)
    app.refresh_availability()
    ui.wait_until(lambda: app.is_available(app.runtime.catalog.get("H01")), "H01 available again", 15)
    start_h01(ui)
    reader.place(WANG.id_number)
    ui.wait_screen("reprint")
    assert "1" in app.sm.current_screen.ids.owed.text
    ui.tap_id("reprint_button")
    ui.wait_screen("form")
    assert len(a4.jobs) == jobs + 1
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_out_of_service_between_visits_and_back_by_itself(ui: Any) -> None:
    app, health = ui.app, ui.app.runtime.health
    health.set_out_of_service("maintenance")
    try:
        ui.wait_screen("out_of_service", timeout=15)
        assert "暂停服务" in screen_text(ui)
        ui.tap_id("language_button")
        assert "Temporarily out of service" in screen_text(ui)
    finally:
        health.clear_out_of_service()
    ui.wait_screen("home", timeout=15)


def test_rating_is_counted_once_per_visit(ui: Any) -> None:
    from kivy.clock import Clock  # not at import: the window must be made by the fixture, at the kiosk's size

    from kiosk.screens.printing import MIN_SHOWN_S

    app = ui.app
    stats = app.runtime.stats
    before = stats.report().ratings.get("basically_satisfied", 0)
    start_h01(ui)
    app.runtime.devices.get("id_card").place(WANG.id_number)
    ui.wait_screen("form")
    ui.tap(app.sm.current_screen.inputs["purpose"].children[-1])
    ui.wait_screen("confirm")
    entered: dict[str, float] = {}

    def note(_sm: Any, name: str) -> None:
        entered.setdefault(name, Clock.get_boottime())

    app.sm.bind(current=note)
    try:
        ui.tap_id("confirm_button")
        ui.wait_screen("done")
    finally:
        app.sm.unbind(current=note)
    # The simulated printers are quick; "正在打印" stays up long enough to be read all the same.
    assert entered["done"] - entered["printing"] >= MIN_SHOWN_S
    assert "请取走您的身份证" in screen_text(ui)  # the card is still on the reader
    ui.tap_id("rate_basically_satisfied")
    ui.tap_id("rate_satisfied")  # a second touch does not count again
    ui.tap_id("finish_button")
    assert ui.current == "done" and app.sm.current_screen.finishing  # waits for the card
    app.runtime.devices.get("id_card").remove()
    ui.wait_screen("home")
    assert stats.report().ratings.get("basically_satisfied", 0) == before + 1


def test_watchdog_pings_come_from_the_ui_loop_and_stop_when_it_stalls(ui: Any, tmp_path: Any) -> None:
    import time

    from tests.services.test_touch_supervisor import NotifySocket

    # systemd's WatchdogSec=0.4 s: a ping is due every 0.2 s of UI loop
    with NotifySocket(tmp_path / "notify", watchdog_usec=400_000) as notify:
        received = notify.received
        event = ui.app.start_watchdog(notify.env)
        assert event is not None
        try:
            ui.wait_seconds(1.0)
            running = received()
            assert running and set(running) == {b"WATCHDOG=1"}
            time.sleep(1.0)  # the UI loop is stalled: no frame runs, so nothing may be sent
            assert received() == []
            ui.wait_seconds(0.6)
            assert received(), "pings resume when the loop runs again"
        finally:
            event.cancel()
    assert ui.app.start_watchdog({}) is None  # outside systemd nothing is scheduled


def test_query_results_on_screen_and_the_slip_only_when_asked(ui: Any) -> None:
    app = ui.app
    receipt = app.runtime.devices.get("receipt_printer")
    reader = app.runtime.devices.get("id_card")
    jobs = len(receipt.jobs)
    open_guide(ui, "H17")  # ID card progress: a query without form fields
    ui.tap_id("start_button")
    ui.wait_screen("identify")
    reader.place(WANG.id_number)
    if ui.wait_screen("confirm", "done") == "confirm":
        ui.tap_id("confirm_button")
        ui.wait_screen("done")
    done = app.sm.current_screen
    assert visible_text(done.ids.display) and done.slip_state == "offered"
    assert len(receipt.jobs) == jobs  # results on screen, no paper yet
    receipt.inject("paper_out", True)
    try:
        ui.tap_id("slip_button")
        ui.wait_until(lambda: done.slip_state != "printing", "the slip attempt")
        assert done.slip_state == "offered" and "凭条打印失败" in done.ids.problem.text
    finally:
        receipt.clear("paper_out")
    ui.tap_id("slip_button")
    ui.wait_until(lambda: done.slip_state == "printed", "the slip")
    assert len(receipt.jobs) == jobs + 1 and done.ids.slip_button.disabled
    reader.remove()
    ui.tap_id("finish_button")
    ui.wait_screen("home")


def test_a_broken_scanner_leaves_typing_the_travel_details(ui: Any) -> None:
    app = ui.app
    scanner = app.runtime.devices.get("scanner")
    scanner.inject("offline", True)
    try:
        open_guide(ui, "E01")
        ui.tap_id("start_button")
        ui.wait_screen("identify")
        screen = app.sm.current_screen
        ui.wait_until(lambda: "手动输入" in screen.ids.problem.text, "the scanner notice")
        ui.tap_id("language_button")  # the notice follows the language, as every other text does
        assert "type the document details" in screen.ids.problem.text
        ui.tap_id("language_button")
        assert "手动输入" in screen.ids.problem.text
        ui.tap_id("type_button")
        ui.wait_screen("travel_entry")
        entry = app.sm.current_screen
        assert all(w.text == "" for w in entry.inputs.values())
        ui.tap_id("read_button")  # nothing typed: each field says what it needs
        ui.wait_until(lambda: any(e.text for e in entry.errors.values()), "a field's message")
        said = next(e for e in entry.errors.values() if e.text)
        before = said.text
        ui.tap_id("language_button")
        after = said.text
        ui.tap_id("language_button")
        assert after != before and after.isascii() and not before.isascii()
        assert said.text == before
    finally:
        scanner.clear("offline")
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_a_list_counts_as_at_rest_by_its_glide_and_only_a_damped_list_by_its_overscroll(ui: Any) -> None:
    from kivy.effects.dampedscroll import DampedScrollEffect
    from kivy.effects.scroll import ScrollEffect
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    from kiosk.demo.driver import lists_at_rest, scrolling_lists

    outer, inner = ScrollView(effect_cls=ScrollEffect), ScrollView(effect_cls=ScrollEffect)
    box, entry = BoxLayout(), Label(text="entry")
    outer.add_widget(box)
    box.add_widget(inner)
    inner.add_widget(entry)
    lists = scrolling_lists(entry)
    assert lists == [inner, outer]
    assert lists_at_rest(lists)
    # A plain ScrollEffect keeps the last overscroll it clamped as a stale number: the list stands still.
    inner.effect_y.overscroll = -12.0
    assert lists_at_rest(lists)
    inner.effect_y.velocity = 40.0  # gliding
    assert not lists_at_rest(lists)
    inner.effect_y.velocity = 0
    outer.effect_cls = DampedScrollEffect
    outer.effect_y.overscroll = 12.0  # a damped list springs back from it: not at rest yet
    assert not lists_at_rest(lists)
    outer.effect_y.overscroll = 0
    assert lists_at_rest(lists)
