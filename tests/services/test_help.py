"""The help desk: a resident's call reaches the simulator over the signed API, the answer comes back by polling.

The simulator runs in this process on loopback; the officer answers through its loopback-only
/sim endpoint. What crossed the wire is read back from the simulator's records.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from kiosk.backend_sim.server import SimServer, serve
from kiosk.config import DEMO_TERMINAL_ID
from kiosk.services import journal as J
from kiosk.services.help import HelpBusy, HelpContext, HelpDesk, HelpNotShared, HelpState, screenshot_body
from kiosk.services.journal import Journal
from kiosk.services.metrics import KioskMetrics
from kiosk.services.stats import Stats
from tests.conftest import make_client

JPEG = b"\xff\xd8\xff\xe0 not really a picture \xff\xd9"


@pytest.fixture
def desk(sim: SimServer, tmp_path: Path) -> Iterator[HelpDesk]:
    journal, stats = Journal(tmp_path), Stats(tmp_path)
    desk = HelpDesk(make_client(sim.url), journal, stats, poll_s=0.1, metrics=KioskMetrics(DEMO_TERMINAL_ID))
    try:
        yield desk
    finally:
        desk.end_session()
        journal.close()
        stats.close()


def _records(sim: SimServer) -> dict[str, dict[str, Any]]:
    r = requests.get(f"{sim.url}/api/v1/sim/help-requests", timeout=5)
    r.raise_for_status()
    return {row["ticket"]: row for row in r.json()}


def _answer(sim: SimServer, ticket: str, reply: str) -> requests.Response:
    return requests.post(f"{sim.url}/api/v1/sim/help-requests/{ticket}/answer", json={"reply": reply}, timeout=5)


def _wait(predicate: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_call_carries_where_the_resident_is_and_nothing_personal(desk: HelpDesk, sim: SimServer) -> None:
    state = desk.open(HelpContext("identify", "S01", "identify"), screenshot_body(JPEG))
    assert state.waiting and state.ticket.isdigit() and len(state.ticket) == 6
    row = _records(sim)[state.ticket]
    assert (row["terminal_id"], row["screen"], row["item_id"], row["step"]) == (DEMO_TERMINAL_ID, "identify", "S01",
                                                                                 "identify")
    assert row["identity_masked"] == "" and row["status"] == "open" and row["screenshots"] == 1
    assert requests.get(f"{sim.url}/fleet/help/{state.ticket}/screenshot", timeout=5).content == JPEG
    # A second call while the first stands is refused on the kiosk, before anything is sent.
    with pytest.raises(HelpBusy):
        desk.open(HelpContext("form"))
    assert len([r for r in _records(sim).values() if r["status"] == "open"]) >= 1


def test_the_masked_name_goes_only_when_shared_and_never_unmasked(desk: HelpDesk, sim: SimServer) -> None:
    with pytest.raises(HelpNotShared):
        desk.open(HelpContext("form", "H01", "form"), identity_masked="王小明")
    state = desk.open(HelpContext("form", "H01", "form"), identity_masked="王*明")
    assert state.identity_shared and _records(sim)[state.ticket]["identity_masked"] == "王*明"


def test_the_officer_answer_arrives_by_polling_and_is_journaled_and_counted(desk: HelpDesk, sim: SimServer,
                                                                            tmp_path: Path) -> None:
    heard: list[HelpState] = []
    arrived = threading.Event()
    desk.listeners.append(lambda s: (heard.append(s), arrived.set()))
    state = desk.open(HelpContext("confirm", "H01", "confirm"))
    assert desk.metrics.help_open._value.get() == 1
    desk.show_screen("printing", screenshot_body(JPEG + b"2"))
    _wait(lambda: _records(sim)[state.ticket]["screenshots"] == 1 and _records(sim)[state.ticket]["screen"]
          == "printing")
    assert _answer(sim, state.ticket, "请稍等，民警马上到。").status_code == 200
    assert arrived.wait(10)
    assert heard[-1].answered and heard[-1].reply == "请稍等，民警马上到。" and heard[-1].answered_at
    assert desk.current is not None and desk.current.answered  # on show until acknowledged
    assert desk.metrics.help_open._value.get() == 0
    assert desk.metrics.help_requests._value.get() == 1
    desk.acknowledge()
    assert desk.current is None
    entry = desk.journal.get(f"help-{state.ticket}")
    assert entry.kind == J.HELP_REQUEST and entry.refs["reference"] == state.ticket
    assert entry.refs["resolution"] == "answered"
    report = desk.stats.report().to_dict()
    assert report["help"]["asked"] == 1 and report["help"]["answered"] == 1
    assert report["help"]["days"][0]["asked"] == 1
    # An answered request cannot be answered twice.
    assert _answer(sim, state.ticket, "again").status_code == 409


def test_cancel_and_session_end_close_the_request(desk: HelpDesk, sim: SimServer) -> None:
    first = desk.open(HelpContext("home"))
    desk.cancel()
    assert desk.current is None and _records(sim)[first.ticket]["status"] == "closed"
    assert desk.journal.get(f"help-{first.ticket}").refs["resolution"] == "cancelled"
    second = desk.open(HelpContext("form", "H01", "form"))
    desk.end_session()
    assert _records(sim)[second.ticket]["status"] == "closed"
    assert desk.journal.get(f"help-{second.ticket}").refs["resolution"] == "session_ended"
    assert _answer(sim, second.ticket, "too late").status_code == 409
    assert desk.stats.report().to_dict()["help"] == {"days": desk.stats.report().to_dict()["help"]["days"],
                                                     "asked": 2, "answered": 0}


def test_another_terminal_cannot_read_or_cancel_a_ticket(tmp_path: Path) -> None:
    from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET
    from kiosk.services.backend import BackendClient, BackendRejected

    server = serve("127.0.0.1", 0, terminals={DEMO_TERMINAL_ID: DEMO_HMAC_SECRET.encode(), "JN-OTHER-0001": b"other"})
    try:
        desk = HelpDesk(make_client(server.url), poll_s=60)
        state = desk.open(HelpContext("home"))
        stranger = BackendClient(server.url, "JN-OTHER-0001", b"other", DEMO_BACKEND_PUBLIC_KEY, 2.0, 5.0, 0, 0.0)
        for call in (lambda: stranger.get_help_request(state.ticket),
                     lambda: stranger.cancel_help_request(state.ticket)):
            with pytest.raises(BackendRejected) as caught:
                call()
            assert caught.value.context.get("remote_code") == "help_request_not_found"
        assert desk.poll().waiting  # still open for its own terminal
        desk.end_session()
    finally:
        server.stop()


def test_a_screenshot_that_is_not_base64_is_refused(desk: HelpDesk) -> None:
    from kiosk.services.backend import BackendRejected

    with pytest.raises(BackendRejected):
        desk.open(HelpContext("home"), {"media_type": "image/jpeg", "data_b64": "@@@ not base64 @@@"})
    assert desk.current is None


def test_kiosk_stats_shows_help_requests_per_day_and_how_many_were_answered(sim: SimServer, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from kiosk import localtime

    stats = Stats(tmp_path)
    desk = HelpDesk(make_client(sim.url), Journal(tmp_path), stats, poll_s=60)
    first = desk.open(HelpContext("home"))
    assert _answer(sim, first.ticket, "好的").status_code == 200
    assert desk.poll().answered
    desk.acknowledge()
    desk.open(HelpContext("form", "H01", "form"))
    desk.end_session()  # the second is never answered
    stats.record_help("asked", at=time.time() - 3 * 86400)  # another day
    desk.journal.close()
    stats.close()
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path}"\n')

    def kiosk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "stats", *args],
                              capture_output=True, text=True, timeout=60)

    data = json.loads(kiosk("--json").stdout)["help"]
    today = localtime.today().isoformat()
    assert data["asked"] == 3 and data["answered"] == 1
    assert data["days"][-1] == {"day": today, "asked": 2, "answered": 1} and len(data["days"]) == 2
    only_today = json.loads(kiosk("--from", today, "--json").stdout)["help"]
    assert (only_today["asked"], only_today["answered"]) == (2, 1)
    table = kiosk()
    assert table.returncode == 0 and "Help requests: 3 asked, 1 answered" in table.stdout
    assert f"{today}  asked    2  answered    1" in table.stdout
