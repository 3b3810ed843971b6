"""Maintenance actions and remote commands on a real runtime (simulated devices, live backend simulator)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from print_templates.escpos_decode import decode
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.services import journal as J
from kiosk.services.heartbeat import RemoteCommand
from kiosk.services.maintenance import LockedOut, MaintenanceAccess, WrongPin
from kiosk.services.maintenance_ops import (CORNERS, RESTART_EXIT_STATUS, CornerGesture, KioskBusy,
                                            KioskCommandHandler,
                                            MaintenanceService, NotInMaintenance, NothingOwed,
                                            ReprintNeedsHolder, UiHooks)
from kiosk.services.workflow.records import Produced
from kiosk.services.workflow.steps import Outcome

WANG = DEMO_CARDS[0]  # 王小明, the household head of H01

PIN = "480317"


class Clock:
    """A hand-moved clock for the gesture window."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(runtime: Any) -> Iterator[MaintenanceService]:
    access = MaintenanceAccess.for_state_dir(runtime.state_dir, scrypt_n=2**10)
    access.set_pin(PIN)
    restarts: list[int] = []
    svc = MaintenanceService(runtime, access, on_restart=lambda: restarts.append(RESTART_EXIT_STATUS))
    svc.restarts = restarts  # type: ignore[attr-defined]
    yield svc


# --- gesture ------------------------------------------------------------------------------------
W, H = 1080, 1920
POINTS = {"top_left": (5, H - 5), "top_right": (W - 5, H - 5), "bottom_right": (W - 5, 5), "bottom_left": (5, 5)}


def test_the_four_corners_clockwise_within_the_window_open_maintenance() -> None:
    clock = Clock()
    g = CornerGesture(clock=clock)
    results = []
    for name in CORNERS:
        clock.now += 1
        results.append(g.touch(*POINTS[name], W, H))
    assert results == [False, False, False, True]
    assert not g.touch(*POINTS["top_left"], W, H)  # it starts over after success


@pytest.mark.parametrize("order", [
    ["top_left", "top_right", "bottom_left", "bottom_right"],  # wrong order
    ["top_left", "top_right", "middle", "bottom_right", "bottom_left"],  # a touch elsewhere breaks it
])
def test_other_touch_sequences_do_not_open_it(order: list[str]) -> None:
    g = CornerGesture(clock=Clock())
    points = {**POINTS, "middle": (W / 2, H / 2)}
    assert not any(g.touch(*points[name], W, H) for name in order)


def test_a_slow_sequence_does_not_count() -> None:
    clock = Clock()
    g = CornerGesture(window_s=5, clock=clock)
    out = []
    for name in CORNERS:
        clock.now += 2  # 6 s from the first corner to the last
        out.append(g.touch(*POINTS[name], W, H))
    assert out == [False, False, False, False]


# --- PIN and leaving ------------------------------------------------------------------------------
def test_unlock_takes_the_kiosk_out_of_service_and_leaving_brings_it_back(service: MaintenanceService,
                                                                         runtime: Any) -> None:
    with pytest.raises(NotInMaintenance):
        service.test_print_receipt()
    with pytest.raises(WrongPin) as wrong:
        service.unlock("000001")
    assert wrong.value.attempts_left == 4
    service.unlock(PIN)
    assert service.active and runtime.out_of_service()
    assert runtime.health.out_of_service_reason() == "maintenance"
    assert service.status().attempts_left == 5  # a good PIN resets the count
    service.leave()
    assert not service.active and not runtime.out_of_service()


def test_five_wrong_pins_lock_and_the_right_one_is_then_refused(service: MaintenanceService) -> None:
    for left in (4, 3, 2, 1):
        with pytest.raises(WrongPin) as e:
            service.unlock("111112")
        assert e.value.attempts_left == left
    with pytest.raises(LockedOut) as locked:
        service.unlock("111112")
    assert locked.value.until > time.time() + 14 * 60
    with pytest.raises(LockedOut):
        service.unlock(PIN)
    assert not service.active


# --- devices and prints ---------------------------------------------------------------------------
def test_device_status_and_test_prints(service: MaintenanceService, runtime: Any) -> None:
    service.unlock(PIN)
    rows = {r.name: r for r in service.device_rows()}
    assert set(rows) == {name for name, _ in runtime.devices.all()}
    assert rows["receipt_printer"].supplies.get("paper") == "ok"
    printer = runtime.devices.receipt_printer
    before = len(printer.jobs)
    sent = service.test_print_receipt()
    assert printer.jobs[before:] == [sent]
    assert "测试".encode("gb18030") in sent or b"TEST" in sent
    job = service.test_print_a4()
    assert job
    assert list((runtime.state_dir.parent / "paper_tray").glob("*.pdf"))


def test_paper_reset_refills_the_simulator_and_counts(service: MaintenanceService, runtime: Any) -> None:
    service.unlock(PIN)
    printer = runtime.devices.receipt_printer
    printer.paper_mm = 0.0
    assert printer.status().supplies["paper"] == "out"
    counter = service.reset_paper("receipt_printer")
    assert counter.refills == 1
    assert printer.status().supplies["paper"] == "ok"
    assert service.reset_paper("receipt_printer").refills == 2
    assert MaintenanceService(runtime, service.access).paper_counters()["receipt_printer"].refills == 2


# --- owed prints ---------------------------------------------------------------------------------
def _owed_run(runtime: Any, sim: Any, flows: Any) -> Produced:
    runtime.devices.a4_printer.inject("paper_out", True)
    runtime.devices.receipt_printer.inject("paper_out", True)
    txn = runtime.engine.start("H01")
    produced = flows.drive(txn, sim.url, card=WANG)
    assert txn.outcome is Outcome.COMPLETED
    txn.finish()
    runtime.devices.a4_printer.inject("paper_out", False)
    runtime.devices.receipt_printer.inject("paper_out", False)
    return produced


def test_owed_prints_are_listed_and_reprinted(service: MaintenanceService, runtime: Any, sim: Any,
                                              flows: Any) -> None:
    first = _owed_run(runtime, sim, flows)
    owed = service.owed_prints()
    assert sorted(p.kind for p in owed) == [J.PRINT_A4, J.PRINT_RECEIPT]
    receipt = next(p for p in owed if p.kind == J.PRINT_RECEIPT)
    a4 = next(p for p in owed if p.kind == J.PRINT_A4)
    assert a4.document_id and "H01" in a4.line()
    jobs = len(runtime.devices.receipt_printer.jobs)
    produced = service.reprint(receipt.key)
    assert len(produced.receipts) == 1 and len(runtime.devices.receipt_printer.jobs) == jobs + 1
    original, again = decode(first.receipts[0]), decode(produced.receipts[0])
    assert original.qr_codes and again.qr_codes == original.qr_codes  # the technician's copy verifies too
    def but_time(lines: tuple[str, ...]) -> list[str]:
        return [line for line in lines if not line.startswith("办理时间")]
    assert but_time(again.lines) == but_time(original.lines) and len(original.lines) > 12  # every result line kept
    with pytest.raises(ReprintNeedsHolder):
        service.reprint(a4.key, card=DEMO_CARDS[1])  # someone else's card fetches nothing
    again = service.reprint(a4.key, card=WANG)
    assert again.undelivered == () and len(again.documents) == 1
    assert service.owed_prints() == []
    with pytest.raises(NothingOwed):
        service.reprint(a4.key, card=WANG)


# --- logs ---------------------------------------------------------------------------------------
def test_log_export_masks_personal_data_again(service: MaintenanceService, runtime: Any, tmp_path: Path) -> None:
    log_file = runtime.state_dir / "logs" / "kiosk.log"
    with log_file.open("a", encoding="utf-8") as fh:  # a line that slipped past the logging filter
        fh.write("2026-01-01 old line id=370102199003071234 phone 13812345678\n")
    stick = tmp_path / "usb"
    with pytest.raises(NotInMaintenance):
        service.export_logs(stick)
    service.unlock(PIN)
    with pytest.raises(Exception) as missing:
        service.export_logs(stick)  # no stick mounted
    assert "does not exist" in str(missing.value)
    stick.mkdir()
    result = service.export_logs(stick)
    assert result.path.parent == stick and result.files >= 1 and result.lines >= 1
    text = "".join(p.read_text() for p in result.path.iterdir())
    assert "370102199003071234" not in text and "13812345678" not in text
    assert "3701**********1234" in text and "138****5678" in text


# --- remote commands ------------------------------------------------------------------------------
def _cmd(kind: str, **args: Any) -> RemoteCommand:
    now = time.time()
    return RemoteCommand(f"c-{kind}", kind, args, now, now + 600)


def test_remote_commands_act_on_the_runtime_and_tell_the_ui(service: MaintenanceService, runtime: Any,
                                                            sim: Any, flows: Any) -> None:
    seen: list[Any] = []
    hooks = UiHooks(restart=lambda: seen.append("restart"), maintenance_changed=lambda on: seen.append(("m", on)),
                    notice_changed=lambda text: seen.append(("n", text)))
    handler = KioskCommandHandler(service, hooks)
    handler.handle_command(_cmd("out_of_service_notice", text="设备维护中"))
    assert runtime.out_of_service() and runtime.health.out_of_service_reason() == "设备维护中"
    handler.handle_command(_cmd("leave_maintenance"))
    assert not runtime.out_of_service()
    handler.handle_command(_cmd("enter_maintenance"))
    assert runtime.health.out_of_service_reason() == "maintenance" and not service.active  # the menu needs the PIN
    handler.handle_command(_cmd("leave_maintenance"))
    handler.handle_command(_cmd("restart"))
    assert seen == [("n", "设备维护中"), ("m", False), ("n", ""), ("m", True), ("m", False), ("n", ""), "restart"]
    with pytest.raises(NothingOwed):
        handler.handle_command(_cmd("reprint", document_id="D-NOT-OWED"))
    _owed_run(runtime, sim, flows)
    a4 = next(p for p in service.owed_prints() if p.kind == J.PRINT_A4)
    busy = runtime.engine.start("H04")
    with pytest.raises(KioskBusy):
        handler.handle_command(_cmd("reprint", document_id=a4.document_id))
    busy.cancel()
    busy.finish()
    runtime.devices.id_card.place(WANG)  # even the holder's card left on the reader is not read remotely
    jobs = len(runtime.devices.receipt_printer.jobs)
    with pytest.raises(ReprintNeedsHolder):
        handler.handle_command(_cmd("reprint", document_id=a4.document_id))
    assert len(runtime.devices.receipt_printer.jobs) == jobs + 1  # the owed receipt came out
    remote = decode(runtime.devices.receipt_printer.jobs[-1])
    assert remote.qr_codes and not any(line.startswith(("户号", "与户主关系")) for line in remote.lines)  # no lines
    assert [p.kind for p in service.owed_prints()] == [J.PRINT_A4]  # the document waits for its holder
    assert [p.kind for p in runtime.engine.pending_reprints(WANG)] == [J.PRINT_A4]


def test_maintenance_errors_have_chinese_text() -> None:
    from kiosk.i18n import translate
    from kiosk.services import maintenance_ops as ops

    errors = [c for c in vars(ops).values() if isinstance(c, type) and issubclass(c, ops.MaintenanceOpError)]
    assert len(errors) == 6
    for cls in errors:
        assert translate(cls.message_en, "zh_CN") != cls.message_en, cls.__name__
