"""The terminal's day is the station's (Beijing time), not the machine's zone.

Between 16:00 and 24:00 UTC a machine set to UTC is a day behind Beijing: a kiosk that
asked the machine for "today" then disagreed with the backend about date fields and
card expiry. These tests stand at such an instant instead of waiting for one.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import pytest

from kiosk import localtime
from kiosk.config import from_dict
from kiosk.errors import ConfigError, FieldError
from kiosk.hardware.idcard import IdentityCard
from kiosk.services.catalog import Catalog
from kiosk.services.workflow.rules import Refused

# 2026-11-29 17:00 UTC = 2026-11-30 01:00 in Beijing.
EVENING_UTC = dt.datetime(2026, 11, 29, 17, 0, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture
def at_evening_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(localtime, "_clock", lambda: EVENING_UTC)
    previous = localtime.zone()
    yield
    localtime._zone = previous


def test_the_station_day_is_beijings(at_evening_utc: None) -> None:
    localtime.set_zone("Asia/Shanghai")
    assert localtime.today() == dt.date(2026, 11, 30)
    assert localtime.stamp() == "2026-11-30 01:00:00"
    localtime.set_zone("UTC")  # a station configured for another zone
    assert localtime.today() == dt.date(2026, 11, 29)


def test_an_unknown_zone_is_a_config_error() -> None:
    assert from_dict({}).terminal.timezone == "Asia/Shanghai"
    with pytest.raises(ConfigError) as err:
        from_dict({"terminal": {"timezone": "Mars/Olympus_Mons"}})
    assert err.value.key == "terminal.timezone"


def test_date_fields_accept_the_station_day(at_evening_utc: None) -> None:
    localtime.set_zone("Asia/Shanghai")
    spec = Catalog.load().get("T17").field("accident_date")  # today-3d .. today
    assert spec.validate("2026-11-30") == "2026-11-30"  # already today in Jinan
    with pytest.raises(FieldError):
        spec.validate("2026-12-01")


def test_a_card_valid_to_the_machines_date_has_expired_at_the_station(at_evening_utc: None, runtime) -> None:
    from kiosk.hardware.simulators.cards import DEMO_CARDS

    localtime.set_zone("Asia/Shanghai")
    card: IdentityCard = DEMO_CARDS[0]
    expiring = IdentityCard(**{**card.__dict__, "valid_to": "2026-11-29"})
    txn = runtime.engine.start("H01")
    with pytest.raises(Refused) as exc:
        txn.identify(expiring)
    assert exc.value.rule == "id_card_expired"
