"""Heartbeats: what is sent, the on-disk queue while the backend is away, and remote commands.

The backend is the live simulator (in this process, free loopback port); "unreachable" is a
client pointed at a closed port, then the real one again. Commands are queued through the
simulator's operator endpoint and verified with the demo backend key, as a terminal does.
"""
from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.errors import KioskError
from kiosk.hardware.base import DeviceState, SupplyState, status
from kiosk.services import signing
from kiosk.services.backend import BackendClient
from kiosk.backend_sim.server import SimServer, serve
from kiosk.services.heartbeat import (MAX_COMMAND_LIFETIME_S, CommandRejected, CommandVerifier, HeartbeatSender,
                                      RemoteCommand, SeenCommands, reset_replay_store)
from kiosk.services.metrics import KioskMetrics

SECRET = DEMO_HMAC_SECRET.encode()


class Recorder:
    """A CommandHandler that records what it is handed (and can be told to fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.commands: list[RemoteCommand] = []
        self.fail = fail

    def handle_command(self, command: RemoteCommand) -> None:
        self.commands.append(command)
        if self.fail:
            raise KioskError("cannot do that now")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0, terminals={DEMO_TERMINAL_ID: SECRET, "JN-HB-0002": b"second-secret",
                                              "JN-HB-0003": b"third-secret", "JN-HB-0004": b"fourth-secret"})
    try:
        yield server
    finally:
        server.stop()


def _client(url: str, terminal_id: str = DEMO_TERMINAL_ID, secret: bytes = SECRET) -> BackendClient:
    return BackendClient(url, terminal_id, secret, DEMO_BACKEND_PUBLIC_KEY, 1.0, 5.0, 0, 0.0)


DEVICES: dict[str, Any] = {
    "receipt_printer": status(DeviceState.ONLINE, {"paper": SupplyState.LOW}),
    "a4_printer": status(DeviceState.USER_ERROR, {"paper": SupplyState.OK}, {"cover_open"}),
    "id_card": status(DeviceState.ONLINE),
}


def _sender(backend: Any, tmp: Path, terminal_id: str = DEMO_TERMINAL_ID, **kw: Any) -> HeartbeatSender:
    return HeartbeatSender(backend, tmp, terminal_id, DEMO_BACKEND_PUBLIC_KEY, lambda: DEVICES, **kw)


def _stored(sim: SimServer, terminal_id: str) -> list[dict[str, Any]]:
    return requests.get(f"{sim.url}/api/v1/sim/heartbeats", params={"terminal_id": terminal_id}, timeout=5).json()


def _queue_command(sim: SimServer, terminal_id: str, kind: str, **args: Any) -> str:
    r = requests.post(f"{sim.url}/api/v1/sim/terminals/{terminal_id}/commands", json={"kind": kind, "args": args},
                      timeout=5)
    assert r.status_code == 200, r.text
    return str(r.json()["command_id"])


# --- what a heartbeat says ------------------------------------------------------------------------
def test_a_heartbeat_carries_devices_supplies_version_uptime_disk_memory_and_last_transaction(
        sim: SimServer, tmp_path: Path) -> None:
    metrics = KioskMetrics(DEMO_TERMINAL_ID, "9.9.9")
    last = time.time() - 120
    sender = _sender(_client(sim.url), tmp_path, metrics=metrics, app_version="9.9.9",
                     last_transaction=lambda: last, started_at=time.time() - 3600, name="历下区泉城路24小时智慧警局",
                     location="Jinan, Lixia District")
    before = len(_stored(sim, DEMO_TERMINAL_ID))
    result = sender.beat()
    assert (result.sent, result.queued, result.error) == (1, 0, "")
    stored = _stored(sim, DEMO_TERMINAL_ID)[before:]
    assert len(stored) == 1
    hb = stored[0]["heartbeat"]
    assert hb["app_version"] == "9.9.9" and hb["uptime_s"] >= 3600
    assert hb["name"] == "历下区泉城路24小时智慧警局" and hb["location"] == "Jinan, Lixia District"
    assert hb["devices"]["receipt_printer"] == {"state": "online", "supplies": {"paper": "low"}, "conditions": []}
    assert hb["devices"]["a4_printer"]["conditions"] == ["cover_open"]
    assert datetime.fromisoformat(hb["last_transaction_at"]).timestamp() == pytest.approx(last, abs=1)
    assert hb["disk"]["total_bytes"] > 0 and 0 <= hb["disk"]["free_bytes"] <= hb["disk"]["total_bytes"]
    assert 0 < hb["memory"]["available_bytes"] <= hb["memory"]["total_bytes"]
    assert "_key" not in hb
    assert metrics.registry.get_sample_value("kiosk_heartbeat_queue_length") == 0
    gauge = metrics.registry.get_sample_value("kiosk_heartbeat_last_success_timestamp_seconds")
    assert gauge is not None and gauge == pytest.approx(time.time(), abs=60)


def test_heartbeats_queue_on_disk_while_the_backend_is_away_and_flush_in_order(sim: SimServer, tmp_path: Path) -> None:
    terminal = "JN-HB-0002"
    metrics = KioskMetrics(terminal)
    down = _client(f"http://127.0.0.1:{_free_port()}", terminal, b"second-secret")
    sender = _sender(down, tmp_path, terminal, metrics=metrics)
    for n in range(1, 4):
        result = sender.beat()
        assert (result.sent, result.queued, result.error) == (0, n, "backend_unavailable")
    assert len(list((tmp_path / "heartbeat" / "queue").glob("hb-*.json"))) == 3
    assert _stored(sim, terminal) == []
    assert metrics.registry.get_sample_value("kiosk_heartbeat_last_success_timestamp_seconds") == 0
    # A restart in between: a new sender on the same state folder picks the queue up.
    sender = _sender(_client(sim.url, terminal, b"second-secret"), tmp_path, terminal, metrics=metrics)
    result = sender.beat()
    assert (result.sent, result.queued) == (4, 0)
    assert [h["heartbeat"]["seq"] for h in _stored(sim, terminal)] == [1, 2, 3, 4]
    assert list((tmp_path / "heartbeat" / "queue").glob("hb-*.json")) == []
    assert metrics.registry.get_sample_value("kiosk_heartbeat_last_success_timestamp_seconds") > 0


def test_the_queue_is_bounded_and_drops_the_oldest(tmp_path: Path) -> None:
    down = _client(f"http://127.0.0.1:{_free_port()}")
    sender = _sender(down, tmp_path, max_queue=3)
    for _ in range(5):
        sender.beat()
    names = sorted(p.name for p in (tmp_path / "heartbeat" / "queue").glob("hb-*.json"))
    assert names == [f"hb-{n:012d}.json" for n in (3, 4, 5)]


def test_a_heartbeat_the_backend_times_out_on_is_stored_once(sim: SimServer, tmp_path: Path) -> None:
    terminal = "JN-HB-0003"
    client = BackendClient(sim.url, terminal, b"third-secret", DEMO_BACKEND_PUBLIC_KEY, 1.0, 0.5, 0, 0.0)
    sender = _sender(client, tmp_path, terminal)
    requests.post(f"{sim.url}/api/v1/sim/faults", json={"fail_next": 1, "mode": "timeout", "timeout_s": 1.5}, timeout=5)
    try:
        first = sender.beat()  # the backend stored it, the answer came too late
        assert (first.sent, first.queued, first.error) == (0, 1, "backend_timeout")
    finally:
        requests.post(f"{sim.url}/api/v1/sim/faults", json={"reset": True}, timeout=5)
    second = sender.beat()
    assert (second.sent, second.queued) == (2, 0)
    assert [h["heartbeat"]["seq"] for h in _stored(sim, terminal)] == [1, 2]  # the replay did not store it twice


# --- remote commands end to end -----------------------------------------------------------------
def test_commands_reach_the_handler_once_and_are_acknowledged(sim: SimServer, tmp_path: Path) -> None:
    terminal = "JN-HB-0004"
    ids = [_queue_command(sim, terminal, "restart"),
           _queue_command(sim, terminal, "out_of_service_notice", text="设备维护中 / Under maintenance"),
           _queue_command(sim, terminal, "reprint", document_id="D20260101ABCDEF"),
           _queue_command(sim, terminal, "enter_maintenance"),
           _queue_command(sim, terminal, "leave_maintenance")]
    handler = Recorder()
    sender = _sender(_client(sim.url, terminal, b"fourth-secret"), tmp_path, terminal, handler=handler)
    result = sender.beat()
    assert [c.command_id for c in handler.commands] == ids
    assert [c.kind for c in handler.commands] == ["restart", "out_of_service_notice", "reprint",
                                                  "enter_maintenance", "leave_maintenance"]
    assert handler.commands[1].args["text"] == "设备维护中 / Under maintenance"
    assert handler.commands[2].args["document_id"] == "D20260101ABCDEF"
    assert all(o.status == "accepted" for o in result.commands)
    # The next heartbeat acknowledges them; the backend then stops sending them.
    again = sender.beat()
    assert again.commands == () and len(handler.commands) == 5
    acks = dict(sim.app.db.conn.execute("SELECT command_id, ack_status FROM commands WHERE terminal_id = ?",
                                        (terminal,)).fetchall())
    assert acks == {i: "accepted" for i in ids}


def test_a_command_delivered_again_after_a_lost_ack_is_not_carried_out_twice(sim: SimServer, tmp_path: Path) -> None:
    cid = _queue_command(sim, DEMO_TERMINAL_ID, "restart")
    handler = Recorder()
    sender = _sender(_client(sim.url), tmp_path, handler=handler)
    sender.beat()
    assert [c.command_id for c in handler.commands] == [cid]
    (tmp_path / "heartbeat" / "acks.json").unlink()  # the acknowledgement is lost: the backend sends it again
    second = sender.beat()
    assert [o.reason for o in second.commands] == ["replayed"]
    assert len(handler.commands) == 1
    third = sender.beat()  # the re-acknowledgement (with the first outcome) stops the re-sending
    assert third.commands == ()
    row = sim.app.db.conn.execute("SELECT ack_status FROM commands WHERE command_id = ?", (cid,)).fetchone()
    assert row["ack_status"] == "accepted"


def test_a_handler_that_fails_is_acknowledged_as_failed(sim: SimServer, tmp_path: Path) -> None:
    cid = _queue_command(sim, DEMO_TERMINAL_ID, "enter_maintenance")
    sender = _sender(_client(sim.url), tmp_path, handler=Recorder(fail=True))
    result = sender.beat()
    assert [(o.command_id, o.status, o.reason) for o in result.commands] == [(cid, "failed", "kiosk_error")]
    sender.beat()
    row = sim.app.db.conn.execute("SELECT ack_status, ack_reason FROM commands WHERE command_id = ?", (cid,)).fetchone()
    assert (row["ack_status"], row["ack_reason"]) == ("failed", "kiosk_error")


# --- the verifier ----------------------------------------------------------------------------------
def _signed(key: Any = None, **over: Any) -> dict[str, str]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    body = {"command_id": "Cabc123456", "terminal_id": DEMO_TERMINAL_ID, "kind": "restart", "args": {},
            "issued_at": now.isoformat(), "expires_at": (now + timedelta(minutes=10)).isoformat(), **over}
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return {"payload": payload, "signature": signing.sign_document(key or signing.demo_backend_private_key(), payload)}


def _verifier(tmp_path: Path, **kw: Any) -> CommandVerifier:
    return CommandVerifier(DEMO_BACKEND_PUBLIC_KEY, DEMO_TERMINAL_ID, SeenCommands(tmp_path / "seen.json"), **kw)


# Each case is signed when its test runs, not at collection: a long suite must not let the
# "valid" ones expire before they are checked.
@pytest.mark.parametrize("make, reason", [
    (lambda: _signed(key=signing.private_key_from_seed(b"\x01" * 32)), "bad_signature"),
    (lambda: _signed(issued_at="2020-01-01T00:00:00+00:00", expires_at="2020-01-01T00:10:00+00:00"), "expired"),
    (lambda: _signed(issued_at="2999-01-01T00:00:00+00:00", expires_at="2999-01-02T00:00:00+00:00"), "not_yet_valid"),
    (lambda: _signed(terminal_id="JN-OTHER-0001"), "wrong_terminal"),
    (lambda: _signed(kind="format_disk"), "unknown_kind"),
    (lambda: _signed(kind="reprint", args={}), "bad_args"),
    (lambda: _signed(kind="out_of_service_notice", args={"text": ""}), "bad_args"),
    (lambda: _signed(expires_at="tomorrow"), "malformed"),
    (lambda: {"payload": "{}", "signature": "not base64!"}, "bad_signature"),
], ids=["foreign_key", "expired", "not_yet_valid", "wrong_terminal", "unknown_kind", "reprint_no_args",
        "empty_notice", "malformed_expiry", "bad_base64"])
def test_bad_commands_are_rejected_with_a_reason(tmp_path: Path, make: Any, reason: str) -> None:
    with pytest.raises(CommandRejected) as exc:
        _verifier(tmp_path).verify(make())
    assert exc.value.reason == reason


def test_a_tampered_payload_does_not_verify(tmp_path: Path) -> None:
    signed = _signed()
    signed["payload"] = signed["payload"].replace("restart", "reprint")
    with pytest.raises(CommandRejected) as exc:
        _verifier(tmp_path).verify(signed)
    assert exc.value.reason == "bad_signature"


def test_replays_are_rejected_even_after_a_restart(tmp_path: Path) -> None:
    signed = _signed()
    command = _verifier(tmp_path).verify(signed)
    assert command.kind == "restart" and command.command_id == "Cabc123456"
    with pytest.raises(CommandRejected) as exc:
        _verifier(tmp_path).verify(signed)  # a new verifier reads the replay store from disk
    assert exc.value.reason == "replayed"


@pytest.mark.parametrize("damage", [b"{not json", b"[]", b'{"Cabc123456": "done"}', b"\xff\xfe",
                                    b'{"version": 9, "seen": {}}'])
def test_a_damaged_replay_store_refuses_every_command_until_a_technician_resets_it(tmp_path: Path,
                                                                                  damage: bytes) -> None:
    state = tmp_path / "state"
    store = state / "heartbeat" / "seen.json"
    store.parent.mkdir(parents=True)
    seen_before = _signed()
    assert _verifier(store.parent).verify(seen_before).command_id == "Cabc123456"
    store.write_bytes(damage)  # a power cut, a full disk, a hand
    for signed in (seen_before, _signed(command_id="Cfresh0001")):
        for verifier in (_verifier(store.parent), _verifier(store.parent)):  # a restart changes nothing
            with pytest.raises(CommandRejected) as exc:
                verifier.verify(signed)
            assert exc.value.reason == "replay_store_damaged"
    assert store.read_bytes() == damage  # the evidence is left alone
    done = reset_replay_store(state)
    assert done.was_damaged and done.set_aside is not None and done.set_aside.read_bytes() == damage
    verifier = _verifier(store.parent)
    with pytest.raises(CommandRejected) as exc:  # the one the lost file had seen: it could be a replay
        verifier.verify(seen_before)
    assert exc.value.reason == "issued_before_reset"
    issued_after = datetime.fromtimestamp(done.not_before + 1, timezone.utc)
    fresh = _signed(command_id="Cfresh0002", issued_at=issued_after.isoformat(),
                    expires_at=(issued_after + timedelta(minutes=10)).isoformat())
    assert verifier.verify(fresh).command_id == "Cfresh0002"


def test_a_running_kiosk_takes_commands_again_once_the_store_is_reset(tmp_path: Path) -> None:
    store = tmp_path / "heartbeat" / "seen.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    verifier = _verifier(store.parent)
    with pytest.raises(CommandRejected):
        verifier.verify(_signed(command_id="Cwhile0001"))
    done = reset_replay_store(tmp_path)  # the technician, while the kiosk runs
    later = datetime.fromtimestamp(done.not_before + 1, timezone.utc)
    command = verifier.verify(_signed(command_id="Cafter0001", issued_at=later.isoformat(),
                                      expires_at=(later + timedelta(minutes=5)).isoformat()))
    assert command.command_id == "Cafter0001"


def test_a_command_valid_for_years_is_refused(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for expires, reason in ((now + timedelta(days=3650), "lifetime_too_long"),
                            (now + timedelta(seconds=MAX_COMMAND_LIFETIME_S + 1), "lifetime_too_long"),
                            (now - timedelta(seconds=1), "malformed")):
        with pytest.raises(CommandRejected) as exc:
            _verifier(tmp_path).verify(_signed(command_id="Clong00001", expires_at=expires.isoformat()))
        assert exc.value.reason == reason
    at_most = _signed(command_id="Cday000001", expires_at=(now + timedelta(seconds=MAX_COMMAND_LIFETIME_S)).isoformat())
    assert _verifier(tmp_path).verify(at_most).command_id == "Cday000001"
    assert MAX_COMMAND_LIFETIME_S == 86400


def test_reset_command_store_from_kiosk_provision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from provisioning.cli import main

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    store = tmp_path / "state" / "heartbeat" / "seen.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    if os.geteuid() == 0:  # as on site: root resets a store that belongs to the kiosk's user
        os.chown(store.parent, 65534, 65534)
    assert main(["reset-command-store", "--config", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert "was damaged" in err and str(store) in err
    assert SeenCommands(store).damaged == "" and SeenCommands(store).not_before > 0
    assert [p.name for p in store.parent.glob("seen.*.damaged.json")]
    assert (store.stat().st_uid, store.stat().st_gid) == (store.parent.stat().st_uid, store.parent.stat().st_gid)


def test_badly_signed_commands_from_the_backend_never_reach_the_handler(sim: SimServer, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    handler = Recorder()
    sender = HeartbeatSender(_client(sim.url), tmp_path, DEMO_TERMINAL_ID,
                             signing.public_key_b64(signing.private_key_from_seed(b"\x02" * 32)),
                             lambda: DEVICES, handler=handler)  # the terminal pins another backend key
    _queue_command(sim, DEMO_TERMINAL_ID, "restart")
    result = sender.beat()
    assert result.commands and all(o.reason == "bad_signature" for o in result.commands)
    assert handler.commands == []
    assert any("remote command rejected (bad_signature)" in r.getMessage() for r in caplog.records)
