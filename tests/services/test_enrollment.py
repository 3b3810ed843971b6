"""Enrollment, per-terminal secrets, rotation, revocation and mutual TLS, against a live simulator.

The terminal side is the real adapter (``backend.enroll``, ``BackendClient``); the simulator
runs in this process on free loopback ports (plain HTTP, or HTTPS with client certificates
required) and is stopped here.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.errors import BackendRejected, ConfigError, SignatureError
from kiosk.services import signing
from kiosk.services.backend import (BackendClient, BackendTlsError, EnrollmentCodeInvalid, EnrollmentCodeUsed,
                                    TerminalRevoked, enroll)
from kiosk.backend_sim.server import SimServer, serve
from provisioning.enroll import check_answer, new_key_and_csr

HEARTBEAT = {"seq": 1, "sent_at": "2026-01-01T00:00:00+00:00", "app_version": "test", "uptime_s": 1.0,
             "devices": {"receipt_printer": {"state": "online", "supplies": {"paper": "ok"}, "conditions": []}}}


def _ca_file(sim: SimServer) -> str | bool:
    """The simulator's CA as a file for `requests` (True over plain HTTP)."""
    if not sim.tls:
        return True
    path = Path(tempfile.gettempdir()) / f"kiosk-test-ca-{sim.port}.pem"
    path.write_bytes(sim.ca_pem)
    return str(path)


def _code(sim: SimServer, terminal_id: str, **extra: Any) -> str:
    r = requests.post(f"{sim.enroll_url}/api/v1/sim/enrollment-codes", json={"terminal_id": terminal_id, **extra},
                      verify=_ca_file(sim), timeout=5)
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def _client(sim: SimServer, terminal_id: str, secret: bytes, **kwargs: Any) -> BackendClient:
    return BackendClient(sim.url, terminal_id, secret, DEMO_BACKEND_PUBLIC_KEY, 2.0, 5.0, 0, 0.0, **kwargs)


def _wire(sim: SimServer, terminal_id: str, secret: bytes) -> tuple[int, str]:
    """(HTTP status, error code or "") of a signed GET /health, as the backend sees the signature."""
    path = "/api/v1/health"
    parts = signing.RequestParts("GET", signing.host_header(sim.url), path)
    headers = {"X-Terminal-Id": terminal_id, "Host": parts.host, **signing.sign_request(secret, parts)}
    r = requests.get(sim.url + path, headers=headers, timeout=5)
    return r.status_code, (r.json().get("error") or {}).get("code", "")


def _enroll(sim: SimServer, terminal_id: str) -> tuple[dict[str, Any], Any]:
    key, csr = new_key_and_csr(terminal_id)
    answer = enroll(sim.enroll_url, terminal_id, _code(sim, terminal_id), csr, retries=0,
                    ca_file=_ca_file(sim) if sim.tls else "")
    return answer, key


# --- enrollment ---------------------------------------------------------------------------------
def test_enrollment_issues_a_certificate_for_our_key_and_a_secret_of_our_own(sim: SimServer) -> None:
    answer, key = _enroll(sim, "JN-T-0100")
    check_answer(answer, key, "JN-T-0100")  # our key, our id, issued by the answered CA
    assert answer["ca_pem"] == sim.ca_pem.decode()
    assert answer["public_key"] == DEMO_BACKEND_PUBLIC_KEY
    assert answer["hmac_secret"] != DEMO_HMAC_SECRET and len(answer["hmac_secret"]) == 64
    secret = answer["hmac_secret"].encode()
    assert _client(sim, "JN-T-0100", secret).heartbeat(HEARTBEAT)["commands"] == []
    # The backend verifies with this terminal's own secret: the demo secret does not pass for it...
    assert _wire(sim, "JN-T-0100", DEMO_HMAC_SECRET.encode()) == (401, "bad_signature")
    assert _wire(sim, "JN-T-0100", secret) == (200, "")
    # ...and the demo terminal keeps its demo secret.
    assert _client(sim, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode()).heartbeat(HEARTBEAT)["commands"] == []


def test_the_code_never_crosses_the_wire_and_is_stored_only_hashed(sim: SimServer) -> None:
    code = _code(sim, "JN-T-0101")
    stored = [r[0] for r in sim.app.db.conn.execute("SELECT code_key FROM enrollment_codes WHERE terminal_id = ?",
                                                    ("JN-T-0101",))]
    assert stored == [hashlib.sha256(code.encode()).hexdigest()]
    sent: list[bytes] = []
    original = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, **kw: Any) -> requests.Response:
        sent.append(json.dumps({k: str(v) for k, v in kw.items()}).encode() + url.encode())
        return original(self, method, url, **kw)

    key, csr = new_key_and_csr("JN-T-0101")
    requests.Session.request = spy  # type: ignore[method-assign]
    try:
        enroll(sim.url, "JN-T-0101", code, csr, retries=0)
    finally:
        requests.Session.request = original  # type: ignore[method-assign]
    assert sent and not any(code.encode() in s for s in sent)


def test_a_code_used_twice_is_a_clear_error(sim: SimServer) -> None:
    code = _code(sim, "JN-T-0102")
    _key, csr = new_key_and_csr("JN-T-0102")
    enroll(sim.url, "JN-T-0102", code, csr, retries=0)
    _key2, csr2 = new_key_and_csr("JN-T-0102")
    with pytest.raises(EnrollmentCodeUsed) as exc:
        enroll(sim.url, "JN-T-0102", code, csr2, retries=0)
    assert exc.value.code == "enrollment_code_used" and "already used" in exc.value.message("en")


def test_wrong_expired_or_foreign_codes_are_refused(sim: SimServer) -> None:
    _key, csr = new_key_and_csr("JN-T-0103")
    with pytest.raises(EnrollmentCodeInvalid):
        enroll(sim.url, "JN-T-0103", "NOT-A-REAL-CODE", csr, retries=0)
    expired = _code(sim, "JN-T-0103", ttl_s=-60)
    with pytest.raises(EnrollmentCodeInvalid) as exc:
        enroll(sim.url, "JN-T-0103", expired, csr, retries=0)
    assert exc.value.context["remote_code"] == "enrollment_code_expired"
    other = _code(sim, "JN-T-0199")  # issued for another terminal id
    with pytest.raises(EnrollmentCodeInvalid):
        enroll(sim.url, "JN-T-0103", other, csr, retries=0)


def test_a_csr_for_another_terminal_id_is_refused_and_the_code_stays_usable(sim: SimServer) -> None:
    code = _code(sim, "JN-T-0104")
    _key, wrong_csr = new_key_and_csr("JN-T-9999")
    with pytest.raises(BackendRejected) as exc:
        enroll(sim.url, "JN-T-0104", code, wrong_csr, retries=0)
    assert exc.value.context["remote_code"] == "csr_rejected"
    _key, csr = new_key_and_csr("JN-T-0104")
    assert enroll(sim.url, "JN-T-0104", code, csr, retries=0)["terminal_id"] == "JN-T-0104"


def test_a_tampered_enrollment_answer_is_refused(sim: SimServer) -> None:
    code = _code(sim, "JN-T-0105")
    _key, csr = new_key_and_csr("JN-T-0105")
    requests.post(f"{sim.url}/api/v1/sim/faults", json={"fail_next": 1, "mode": "tamper"}, timeout=5)
    try:
        with pytest.raises(SignatureError):
            enroll(sim.url, "JN-T-0105", code, csr, retries=0)
    finally:
        requests.post(f"{sim.url}/api/v1/sim/faults", json={"reset": True}, timeout=5)


# --- rotation and revocation ------------------------------------------------------------------------
def test_rotation_old_secret_works_until_the_new_one_confirms(sim: SimServer) -> None:
    answer, _ = _enroll(sim, "JN-T-0110")
    old = answer["hmac_secret"].encode()
    client = _client(sim, "JN-T-0110", old)
    new = client.rotate_secret().encode()
    assert new != old
    assert _client(sim, "JN-T-0110", old).health()["status"] == "ok"  # not yet confirmed: both work
    assert _client(sim, "JN-T-0110", new).health()["status"] == "ok"
    with pytest.raises(BackendRejected) as exc:  # confirming with the old secret proves nothing
        sim_old = _client(sim, "JN-T-0110", old)
        sim_old._call("POST", "/credentials/rotate/confirm", {})
    assert exc.value.context["remote_code"] == "rotation_needs_new_secret"
    assert client.confirm_rotation(new)["status"] == "rotated"
    assert _wire(sim, "JN-T-0110", old) == (401, "bad_signature")
    with pytest.raises(SignatureError):  # the refusal is signed with the new secret: the old one cannot read it
        _client(sim, "JN-T-0110", old).health()
    assert client.heartbeat(HEARTBEAT)["commands"] == []  # the client now signs with the new secret


def test_the_demo_terminal_cannot_rotate_its_fixed_secret(sim: SimServer) -> None:
    with pytest.raises(BackendRejected) as exc:
        _client(sim, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode()).rotate_secret()
    assert exc.value.context["remote_code"] == "not_enrolled"


def test_a_revoked_terminal_is_refused_with_a_typed_error_until_enrolled_again(sim: SimServer) -> None:
    answer, _ = _enroll(sim, "JN-T-0120")
    client = _client(sim, "JN-T-0120", answer["hmac_secret"].encode())
    assert client.health()["status"] == "ok"
    r = requests.post(f"{sim.url}/api/v1/sim/terminals/JN-T-0120/revoke", timeout=5)
    assert r.json() == {"terminal_id": "JN-T-0120", "status": "revoked"}
    for call in (client.health, lambda: client.heartbeat(HEARTBEAT), client.rotate_secret):
        with pytest.raises(TerminalRevoked) as exc:
            call()
        assert exc.value.code == "terminal_revoked"
    assert _client(sim, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode()).health()["status"] == "ok"
    rows = {t["terminal_id"]: t for t in requests.get(f"{sim.url}/api/v1/sim/terminals", timeout=5).json()}
    assert rows["JN-T-0120"]["status"] == "revoked"
    fresh, _ = _enroll(sim, "JN-T-0120")  # a replacement terminal gets a new code, secret and certificate
    assert _client(sim, "JN-T-0120", fresh["hmac_secret"].encode()).health()["status"] == "ok"
    assert _wire(sim, "JN-T-0120", answer["hmac_secret"].encode()) == (401, "bad_signature")  # the stolen one's


def test_revoking_an_unknown_terminal_is_a_404(sim: SimServer) -> None:
    r = requests.post(f"{sim.url}/api/v1/sim/terminals/JN-NOBODY/revoke", timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_terminal"


# --- mutual TLS ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_sim() -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0, tls=True)
    try:
        yield server
    finally:
        server.stop()


def _files(tmp_path: Path, answer: dict[str, Any], key: Any) -> tuple[str, str, str]:
    cert, key_file, ca = tmp_path / "t.crt", tmp_path / "t.key", tmp_path / "ca.pem"
    cert.write_text(answer["certificate_pem"])
    ca.write_text(answer["ca_pem"])
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert), str(key_file), str(ca)


def test_enrollment_and_a_signed_call_over_mutual_tls(tls_sim: SimServer, tmp_path: Path) -> None:
    assert tls_sim.url.startswith("https://") and tls_sim.enroll_url != tls_sim.url
    key, csr = new_key_and_csr("JN-T-0200")
    answer = enroll(tls_sim.enroll_url, "JN-T-0200", _code(tls_sim, "JN-T-0200"), csr, retries=0, ca_file=_ca_file(tls_sim))
    assert answer["api_url"] == tls_sim.url
    cert, key_file, ca = _files(tmp_path, answer, key)
    client = BackendClient(answer["api_url"], "JN-T-0200", answer["hmac_secret"].encode(), answer["public_key"],
                           2.0, 5.0, 0, 0.0, ca_file=ca, client_cert=(cert, key_file))
    assert client.health()["status"] == "ok"
    assert client.heartbeat(HEARTBEAT)["commands"] == []
    stored = requests.get(f"{tls_sim.enroll_url}/api/v1/sim/heartbeats?terminal_id=JN-T-0200", verify=ca,
                          timeout=5).json()
    assert len(stored) == 1 and stored[0]["heartbeat"]["devices"]["receipt_printer"]["state"] == "online"


def test_without_the_client_certificate_the_handshake_is_refused(tls_sim: SimServer, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tls_sim.ca_pem)
    client = BackendClient(tls_sim.url, DEMO_TERMINAL_ID, DEMO_HMAC_SECRET.encode(), DEMO_BACKEND_PUBLIC_KEY,
                           2.0, 5.0, 0, 0.0, ca_file=str(ca))
    with pytest.raises(BackendTlsError) as exc:
        client.health()
    assert exc.value.code == "backend_tls_failed"
    # The enrollment listener (no client certificate) serves enrollment and health, nothing else.
    r = requests.post(f"{tls_sim.enroll_url}/api/v1/heartbeats", json=HEARTBEAT, verify=str(ca), timeout=5)
    assert r.status_code == 403 and r.json()["error"]["code"] == "client_certificate_required"


def test_a_backend_whose_certificate_is_not_the_pinned_ca_is_refused(tls_sim: SimServer, tmp_path: Path) -> None:
    key, csr = new_key_and_csr("JN-T-0201")
    answer = enroll(tls_sim.enroll_url, "JN-T-0201", _code(tls_sim, "JN-T-0201"), csr, retries=0, ca_file=_ca_file(tls_sim))
    cert, key_file, _ca = _files(tmp_path, answer, key)
    other = serve("127.0.0.1", 0, tls=True)  # another backend, another CA
    try:
        wrong_ca = tmp_path / "other-ca.pem"
        wrong_ca.write_bytes(other.ca_pem)
        client = BackendClient(tls_sim.url, "JN-T-0201", answer["hmac_secret"].encode(), answer["public_key"],
                               2.0, 5.0, 0, 0.0, ca_file=str(wrong_ca), client_cert=(cert, key_file))
        with pytest.raises(BackendTlsError):
            client.health()
    finally:
        other.stop()


def test_a_certificate_of_another_terminal_does_not_pass(tls_sim: SimServer, tmp_path: Path) -> None:
    key_a, csr_a = new_key_and_csr("JN-T-0202")
    a = enroll(tls_sim.enroll_url, "JN-T-0202", _code(tls_sim, "JN-T-0202"), csr_a, retries=0, ca_file=_ca_file(tls_sim))
    _key_b, csr_b = new_key_and_csr("JN-T-0203")
    b = enroll(tls_sim.enroll_url, "JN-T-0203", _code(tls_sim, "JN-T-0203"), csr_b, retries=0, ca_file=_ca_file(tls_sim))
    cert_a, key_file_a, ca = _files(tmp_path, a, key_a)
    subject = x509.load_pem_x509_certificate(a["certificate_pem"].encode()).subject
    assert [c.value for c in subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)] == ["JN-T-0202"]
    # B's secret with A's certificate: the TLS handshake passes (same CA), the backend refuses.
    client = BackendClient(tls_sim.url, "JN-T-0203", b["hmac_secret"].encode(), b["public_key"], 2.0, 5.0, 0, 0.0,
                           ca_file=ca, client_cert=(cert_a, key_file_a))
    with pytest.raises(BackendRejected) as exc:
        client.health()
    assert exc.value.context["remote_code"] == "certificate_mismatch"


def test_the_ca_survives_a_restart_of_a_file_backed_simulator(tmp_path: Path) -> None:
    db = str(tmp_path / "sim.sqlite3")
    first = serve("127.0.0.1", 0, db_path=db)
    ca1 = first.ca_pem
    answer, _ = _enroll(first, "JN-T-0300")
    first.stop()
    second = serve("127.0.0.1", 0, db_path=db)
    try:
        assert second.ca_pem == ca1
        assert _client(second, "JN-T-0300", answer["hmac_secret"].encode()).health()["status"] == "ok"
    finally:
        second.stop()


def test_enrollment_over_https_without_a_ca_file_is_refused_before_any_connection(tls_sim: SimServer,
                                                                                 tmp_path: Path) -> None:
    code = _code(tls_sim, "JN-T-0210")
    _, csr = new_key_and_csr("JN-T-0210")
    for ca in ("", str(tmp_path / "missing-ca.pem")):
        with pytest.raises(ConfigError) as err:
            enroll(tls_sim.enroll_url, "JN-T-0210", code, csr, retries=0, ca_file=ca)
        assert err.value.key == "ca_file"
    with pytest.raises(ConfigError) as err:  # plain http across a network would hand the secret to anyone
        enroll("http://192.0.2.7:8740", "JN-T-0210", code, csr, retries=0, connect_timeout=30)
    assert err.value.key == "backend_url"
    # Nothing reached the backend: the code is still unused, and with the CA it works.
    answer = enroll(tls_sim.enroll_url, "JN-T-0210", code, csr, retries=0, ca_file=str(_ca_file(tls_sim)))
    assert answer["terminal_id"] == "JN-T-0210"


def test_enrollment_refuses_a_server_that_is_not_the_pinned_cas(tls_sim: SimServer, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(_another_ca_pem())
    _, csr = new_key_and_csr("JN-T-0211")
    with pytest.raises(BackendTlsError):
        enroll(tls_sim.enroll_url, "JN-T-0211", _code(tls_sim, "JN-T-0211"), csr, retries=0, ca_file=str(other_ca))


def _another_ca_pem() -> bytes:
    """The CA of another simulator: a certificate chain the terminal must not accept."""
    other = serve("127.0.0.1", 0, tls=True)
    try:
        return other.ca_pem
    finally:
        other.stop()


def test_signing_helpers_agree_on_the_enrollment_key() -> None:
    # Terminal and backend derive the same HMAC key from the code; a different code gives another key.
    from kiosk.backend_sim.fleet import code_key

    assert code_key("AB-CD") == hashlib.sha256(b"AB-CD").digest() != code_key("AB-CE")
    parts = signing.RequestParts("POST", "backend.example:443", "/api/v1/enrollment", b"{}", "application/json",
                                 "k-12345678")
    headers = signing.sign_request(code_key("AB-CD"), parts)
    signing.verify_request(code_key("AB-CD"), parts, timestamp=headers["X-Timestamp"],
                           nonce=headers["X-Nonce"], signature=headers["X-Signature"])
