"""The fault scheduler's plan carried out on a real engine runtime: every kind fires, counted where it is applied."""
from __future__ import annotations

import os

import pytest

from kiosk.errors import KioskError
from kiosk.services.runtime import Runtime
from kiosk.soak.engine_soak import EngineResident, soak_config
from kiosk.soak.faults import BallastStatvfs, FaultInjector
from kiosk.soak.plan import ENGINE_FAULT_KINDS, SessionPlan, plan_sessions


@pytest.fixture
def runtime(tmp_path):
    """The soak's runtime (embedded backend simulator, device simulators), closed after the test."""
    rt = Runtime.from_config(soak_config(tmp_path / "state", speech={"enabled": False}))
    try:
        yield rt
    finally:
        rt.close()


def test_a_short_run_fires_every_fault_kind_and_counts_it_where_applied(runtime):
    injector = FaultInjector(runtime)
    resident = EngineResident(runtime, injector)
    plans = plan_sessions(runtime.catalog.items, len(ENGINE_FAULT_KINDS), seed=4, kinds=ENGINE_FAULT_KINDS)
    assert sorted(plan.fault for plan in plans) == sorted(ENGINE_FAULT_KINDS)
    for plan in plans:
        assert injector.counts()[plan.fault] == 0
        injector.arm(plan.fault, runtime.catalog.get(plan.item))
        try:
            resident.run(plan)
        finally:
            injector.disarm()
        assert injector.counts()[plan.fault] >= 1, plan
        assert runtime.engine.active() == []
    assert runtime.sim.app.faults.snapshot()["fail_next"] == 0  # switched off again


def test_a_nearly_full_disk_stops_transactions_until_the_ballast_goes(runtime):
    injector = FaultInjector(runtime)
    item = runtime.catalog.get("H01")
    injector.arm("disk_nearly_full", item)
    with pytest.raises(KioskError) as raised:
        runtime.engine.start("H01")
    assert raised.value.code == "disk_full"
    assert injector.counts()["disk_nearly_full"] >= 1
    injector.disarm()
    runtime.engine.start("H01").finish()


def test_the_ballast_leaves_half_the_floor_and_only_while_armed():
    ballast = BallastStatvfs(os.statvfs, floor_mb=200)
    real = os.statvfs("/")
    assert ballast("/").f_bavail == real.f_bavail or ballast.applied == 0
    ballast.armed = True
    low = ballast("/")
    assert low.f_bavail * low.f_frsize <= 100 * 1024 * 1024
    assert ballast.applied == 1


def test_a_resident_whose_card_was_pulled_mid_read_lays_it_again_and_completes(runtime):
    injector = FaultInjector(runtime)
    resident = EngineResident(runtime, injector)
    reader = runtime.devices.get("id_card")
    plan = SessionPlan(0, "H01", "normal", "card_pulled_mid_read")
    injector.arm(plan.fault, runtime.catalog.get("H01"))
    try:
        outcome = resident.run(plan)
    finally:
        injector.disarm()
    assert injector.counts()["card_pulled_mid_read"] == 1
    # The second read found the card laid again (before, it waited out its timeout for a card never laid back).
    assert outcome == "completed"
    assert reader.reads == 1
