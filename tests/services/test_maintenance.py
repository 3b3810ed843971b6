"""Technician PIN: scrypt hash, constant-time check, lockout after 5 failures that survives restarts."""
import json
import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.services import maintenance
from kiosk.services.maintenance import (LockedOut, MaintenanceAccess, PinNotSet, PinRejected, WrongPin, check_policy,
                                        hash_pin, verify_pin)

FAST_N = 2**10  # the lockout logic does not need the production cost; one test below uses it


class Clock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def access(tmp_path, clock):
    a = MaintenanceAccess.for_state_dir(tmp_path, clock=clock, scrypt_n=FAST_N)
    a.set_pin("482915")
    return a


def reopen(access):
    """A new object on the same file: what an app restart sees."""
    return MaintenanceAccess(access.path, clock=access.clock, scrypt_n=FAST_N)


def test_hash_is_salted_scrypt_and_verifies_only_the_pin():
    h1, h2 = hash_pin("482915"), hash_pin("482915")
    assert h1 != h2  # random salt
    scheme, n, r, p, salt, digest = h1.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", maintenance.SCRYPT_N, 8, 1)
    assert verify_pin("482915", h1) and verify_pin("482915", h2)
    assert not verify_pin("482916", h1) and not verify_pin("", h1)
    with pytest.raises(ValueError):
        verify_pin("482915", "md5$abc")


def test_the_pin_itself_is_never_stored(access):
    raw = access.path.read_text()
    assert "482915" not in raw
    assert json.loads(raw)["pin_hash"].startswith("scrypt$")
    assert access.path.stat().st_mode & 0o777 == 0o600


def test_right_pin_passes_and_resets_the_failures(access):
    for left in (4, 3):
        with pytest.raises(WrongPin) as err:
            access.check("000001")
        assert err.value.attempts_left == left
    access.check("482915")
    assert access.status().attempts_left == 5
    with pytest.raises(WrongPin) as err:
        access.check("000001")
    assert err.value.attempts_left == 4


def test_five_failures_lock_even_the_right_pin_until_the_time_passes(access, clock):
    for _ in range(4):
        with pytest.raises(WrongPin):
            access.check("111112")
    with pytest.raises(LockedOut) as err:
        access.check("111112")
    assert err.value.until == clock.t + maintenance.LOCKOUT_S
    with pytest.raises(LockedOut):
        access.check("482915")  # not evaluated while locked
    clock.t += maintenance.LOCKOUT_S - 1
    with pytest.raises(LockedOut):
        access.check("482915")
    clock.t += 1
    access.check("482915")
    assert access.status() == maintenance.AccessStatus(True, 5, False, 0.0)


def test_failures_and_the_lock_survive_a_restart(access, clock):
    for _ in range(3):
        with pytest.raises(WrongPin):
            access.check("999990")
    again = reopen(access)
    with pytest.raises(WrongPin) as err:
        again.check("999990")
    assert err.value.attempts_left == 1
    with pytest.raises(LockedOut):
        again.check("999990")
    with pytest.raises(LockedOut):
        reopen(access).check("482915")
    assert reopen(access).status().locked


def test_repeated_lockouts_double_up_to_a_day(access, clock):
    waits = []
    for _ in range(9):
        for _ in range(4):
            with pytest.raises(WrongPin):
                access.check("123450")
        with pytest.raises(LockedOut) as err:
            access.check("123450")
        waits.append(err.value.until - clock.t)
        clock.t = err.value.until
    base = maintenance.LOCKOUT_S
    assert waits[:4] == [base, 2 * base, 4 * base, 8 * base]
    assert waits[-1] == maintenance.MAX_LOCKOUT_S
    access.check("482915")  # the right PIN after the release clears the history
    for _ in range(4):
        with pytest.raises(WrongPin):
            access.check("123450")
    with pytest.raises(LockedOut) as err:
        access.check("123450")
    assert err.value.until - clock.t == base


def test_a_clock_set_back_does_not_stretch_the_lock(access, clock):
    for _ in range(5):
        with pytest.raises((WrongPin, LockedOut)):
            access.check("246800")
    clock.t -= 10 * 24 * 3600  # someone sets the clock back ten days
    with pytest.raises(LockedOut) as err:
        access.check("482915")
    assert err.value.remaining_s == maintenance.LOCKOUT_S


def test_a_damaged_state_file_fails_closed(access, clock):
    access.path.write_text("{not json")
    with pytest.raises(LockedOut):
        access.check("482915")
    clock.t += maintenance.LOCKOUT_S
    with pytest.raises(PinNotSet):  # the hash is gone with the damaged file: the technician sets a new PIN
        access.check("482915")


def test_no_pin_set(tmp_path):
    with pytest.raises(PinNotSet):
        MaintenanceAccess.for_state_dir(tmp_path, scrypt_n=FAST_N).check("482915")
    assert not MaintenanceAccess.for_state_dir(tmp_path).status().pin_set


@pytest.mark.parametrize("pin", ["12345", "1234567890123", "48291a", "111111", "123456", "987654", "890123", "４８２９１５"])
def test_weak_or_malformed_pins_are_rejected(pin, tmp_path):
    with pytest.raises(PinRejected):
        check_policy(pin)
    a = MaintenanceAccess.for_state_dir(tmp_path, scrypt_n=FAST_N)
    with pytest.raises(PinRejected):
        a.set_pin(pin)
    assert not a.path.exists()


def test_messages_in_chinese_and_english():
    wrong = WrongPin(3)
    assert wrong.message("en") == "Wrong PIN. Attempts left before maintenance locks: 3"
    assert wrong.message("zh_CN") == "密码错误。再错 3 次维护模式将被锁定。"
    locked = LockedOut(until=1000.0 + 14 * 60 + 1, now=1000.0)
    assert locked.message("en") == "Too many wrong PINs. Maintenance is locked for 15 more minutes."
    assert "15 分钟" in locked.message("zh_CN")
    assert PinNotSet().message("zh_CN") == "本终端尚未设置维护密码。"
    assert {WrongPin.code, LockedOut.code, PinNotSet.code, PinRejected.code} == {
        "maintenance_wrong_pin", "maintenance_locked_out", "maintenance_pin_not_set", "maintenance_pin_rejected"}


def test_concurrent_guesses_cannot_exceed_the_limit(access):
    """Two touch events racing must not both slip through on the same counter value."""
    results = []

    def guess():
        try:
            access.check("555551")
        except (WrongPin, LockedOut) as err:
            results.append(type(err).__name__)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("WrongPin") == 4 and results.count("LockedOut") == 8


def test_production_cost_pin_round_trip(tmp_path, clock):
    a = MaintenanceAccess.for_state_dir(tmp_path, clock=clock)
    a.set_pin("73914826")
    a.check("73914826")
    with pytest.raises(WrongPin):
        a.check("73914827")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | st.dictionaries(st.text(max_size=12), st.none() | st.integers() | st.floats() | st.text(max_size=20),
                         max_size=6).map(lambda d: json.dumps({"version": 1, **d}).encode()))
def test_any_state_file_content_parses_or_is_a_value_error(raw):
    try:
        state = maintenance.LockState.from_json(raw)
    except (ValueError, UnicodeDecodeError):
        return
    assert state.failures >= 0 and state.lockouts >= 0 and math.isfinite(state.locked_until)


def test_a_non_finite_lock_time_is_damage_not_an_open_door():
    for bad in (b'{"version": 1, "pin_hash": null, "failures": 5, "locked_until": NaN, "lockouts": 1}',
                b'{"version": 1, "pin_hash": null, "failures": 5, "locked_until": -Infinity, "lockouts": 1}'):
        with pytest.raises(ValueError):
            maintenance.LockState.from_json(bad)


def test_every_operations_error_has_a_chinese_message():
    from kiosk.i18n import translate
    from kiosk.services import metrics
    from provisioning import errors

    classes = [maintenance.MaintenanceError, WrongPin, LockedOut, PinNotSet, PinRejected, metrics.MetricsPortInUse,
               metrics.MetricsServerError, errors.ProvisionError, errors.ConfigExists, errors.InstallVerifyFailed]
    missing = [c.__name__ for c in classes if translate(c.message_en, "zh_CN") == c.message_en]
    assert missing == []
