"""The idle timer: the warning is the last part of the timeout, and one touch gives the full time again."""
from __future__ import annotations

from kiosk.services.idle import IdleTimer


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_quiet_then_warning_then_expired() -> None:
    clock = FakeClock()
    timer = IdleTimer(90, 20, clock)
    assert timer.state() == timer.state() and not timer.state().warning
    clock.now += 69.5
    state = timer.state()
    assert not state.warning and state.left_s == 20.5
    clock.now += 1
    state = timer.state()
    assert state.warning and not state.expired and state.left_s == 19.5
    clock.now += 19.5
    state = timer.state()
    assert state.expired and not state.warning and state.left_s == 0


def test_every_extension_gives_the_full_time_and_is_counted() -> None:
    clock = FakeClock()
    timer = IdleTimer(30, 20, clock)
    for n in range(1, 13):
        clock.now += 25
        assert timer.state().warning
        timer.extend()
        assert timer.extensions == n and timer.state().left_s == 30 and not timer.state().warning
    timer.touched()  # an ordinary touch restarts the count without counting an extension
    assert timer.extensions == 12
    timer.restart()
    assert timer.extensions == 0
