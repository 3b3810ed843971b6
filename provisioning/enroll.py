"""`kiosk-provision enroll` and `rotate-secret`: the terminal's credentials, obtained and kept safely.

Enrollment makes the terminal's EC P-256 key and a CSR here (the private key never leaves
the machine), presents them with a one-time enrollment code, checks what comes back (a
certificate for *this* key and terminal id, issued by the CA in the same answer), and
only then writes anything: the key, the certificate, the CA to pin and the HMAC secret
appear together in one folder (built beside it and renamed into place), readable only by
their owner (0600, or 0640 for ``--group``), and the config is rewritten atomically to
point at them. A code used twice, a wrong code or a backend that cannot be reached stop
the command before the first byte is written.

Rotation asks the backend for a new secret, keeps it in ``<secret file>.pending`` until
the backend confirms a call signed with it, then renames it over the old one. Until the
confirmation both secrets work at the backend, so a power cut or network loss at any
point leaves the terminal able to call; the next run finishes the pending rotation.
"""
from __future__ import annotations

import argparse
import grp
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk import config as kconfig
from kiosk.config import KioskConfig
from kiosk.services import backend
from kiosk.durable import fsync_dir
from provisioning.atomic import staged_dir, write_atomic
from provisioning.errors import ProvisionError

KEY_FILE, CERT_FILE, CA_FILE, SECRET_FILE = "terminal.key", "terminal.crt", "backend-ca.pem", "hmac.secret"


class EnrollmentAnswerInvalid(ProvisionError):
    """The backend's enrollment answer does not fit the request (another key, another terminal, another CA)."""

    code = "enrollment_answer_invalid"


@dataclass(frozen=True)
class Enrolled:
    """What enrollment wrote."""

    terminal_id: str
    config_path: Path
    credentials_dir: Path
    api_url: str
    certificate_not_after: str


def new_key_and_csr(terminal_id: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh EC P-256 key and a PEM CSR for it with the terminal id as common name."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal_id)]))
           .sign(key, hashes.SHA256()))
    return key, csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def check_answer(answer: dict[str, Any], key: ec.EllipticCurvePrivateKey, terminal_id: str) -> None:
    """The certificate must carry our public key and terminal id and be issued by the answered CA.

    Raises EnrollmentAnswerInvalid.
    """
    try:
        cert = x509.load_pem_x509_certificate(answer["certificate_pem"].encode())
        ca = x509.load_pem_x509_certificate(answer["ca_pem"].encode())
    except ValueError as exc:
        raise EnrollmentAnswerInvalid(f"the answer's certificates do not parse: {exc}") from None
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if cert.public_key().public_bytes(pem, raw) != key.public_key().public_bytes(pem, raw):
        raise EnrollmentAnswerInvalid("the issued certificate is not for this terminal's key")
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [terminal_id]:
        raise EnrollmentAnswerInvalid(f"the issued certificate names {cns!r}, not {terminal_id!r}")
    ca_key = ca.public_key()
    try:
        if not isinstance(ca_key, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
            raise InvalidSignature()
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        raise EnrollmentAnswerInvalid("the issued certificate was not signed by the answered CA") from None
    if answer.get("terminal_id") != terminal_id:
        raise EnrollmentAnswerInvalid("the answer is for another terminal id")


def _read_config(path: Path) -> tuple[dict[str, Any], KioskConfig]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProvisionError(f"cannot read config {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProvisionError(f"config {path} is not valid TOML: {exc}") from None
    # Before enrollment a production config lacks what this command is about to write.
    return data, kconfig.from_dict(data, before_enrollment=True)


def _group_id(group: str | None) -> int | None:
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ProvisionError(f"no group {group!r} on this machine (create the kiosk user first, or leave out --group)") \
            from None


def enroll(config_path: str | os.PathLike[str], backend_url: str, code: str, *,
           credentials_dir: str | os.PathLike[str] | None = None, ca_file: str = "", group: str | None = None,
           timeout_s: float = 20.0) -> Enrolled:
    """Enroll the terminal of ``config_path`` with ``backend_url`` using a one-time ``code``.

    Raises EnrollmentCodeUsed, EnrollmentCodeInvalid, BackendError (nothing written),
    EnrollmentAnswerInvalid, ProvisionError, ConfigError.
    """
    cfg_path = Path(config_path).absolute()
    data, cfg = _read_config(cfg_path)
    terminal_id = cfg.terminal.id
    cred_dir = Path(credentials_dir).absolute() if credentials_dir else cfg_path.parent / "credentials"
    gid = _group_id(group)
    key, csr_pem = new_key_and_csr(terminal_id)

    # Without --ca-file, the CA the config already pins (a terminal enrolled before, or one the
    # technician put there); without either, an https enrollment is refused before any connection.
    answer = backend.enroll(backend_url, terminal_id, code, csr_pem, ca_file=ca_file or cfg.backend.ca_file,
                            read_timeout=timeout_s)
    check_answer(answer, key, terminal_id)

    api_url = answer.get("api_url") or backend_url
    paths = {name: str(cred_dir / name) for name in (KEY_FILE, CERT_FILE, CA_FILE, SECRET_FILE)}
    new_data = {**data, "backend": {k: v for k, v in dict(data.get("backend", {})).items() if k != "hmac_secret"}}
    new_data["backend"].update(url=api_url.rstrip("/"), public_key=answer["public_key"],
                               hmac_secret_file=paths[SECRET_FILE], ca_file=paths[CA_FILE],
                               client_cert_file=paths[CERT_FILE], client_key_file=paths[KEY_FILE])
    kconfig.from_dict(new_data)  # the config we are about to write must load (raises ConfigError before any write)
    config_text = tomli_w.dumps(new_data).encode("utf-8")

    mode = 0o640 if gid is not None else 0o600
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with staged_dir(cred_dir) as stage:
        os.chmod(stage, 0o750 if gid is not None else 0o700)
        for name, content in ((KEY_FILE, key_pem), (CERT_FILE, answer["certificate_pem"].encode()),
                              (CA_FILE, answer["ca_pem"].encode()), (SECRET_FILE, answer["hmac_secret"].encode())):
            write_atomic(stage / name, content, mode=mode)
            if gid is not None:
                os.chown(stage / name, -1, gid)
        if gid is not None:
            os.chown(stage, -1, gid)
    old_mode = cfg_path.stat().st_mode & 0o777 if cfg_path.exists() else 0o640
    write_atomic(cfg_path, config_text, mode=old_mode)
    return Enrolled(terminal_id, cfg_path, cred_dir, api_url, answer["certificate_not_after"])


def verify_enrollment(config_path: str | os.PathLike[str]) -> dict[str, Any]:
    """One signed call with the enrolled credentials (over mutual TLS for https). Raises BackendError."""
    cfg = kconfig.load(config_path)
    return backend.BackendClient.from_config(cfg).health()


def rotate_secret(config_path: str | os.PathLike[str]) -> Path:
    """Rotate the HMAC secret of an enrolled terminal (finishing one left pending). Raises ProvisionError, BackendError."""
    cfg = kconfig.load(config_path)
    if not cfg.backend.hmac_secret_file:
        raise ProvisionError("this terminal is not enrolled (backend.hmac_secret_file is not set); run enroll first")
    secret_path = Path(cfg.backend.hmac_secret_file)
    pending = secret_path.with_name(secret_path.name + ".pending")
    client = backend.BackendClient.from_config(cfg)
    mode = secret_path.stat().st_mode & 0o777
    if not pending.exists():
        new_secret = client.rotate_secret()
        write_atomic(pending, new_secret.encode("ascii"), mode=mode)
        if secret_path.stat().st_gid != pending.stat().st_gid:
            os.chown(pending, -1, secret_path.stat().st_gid)
    client.confirm_rotation(pending.read_bytes().strip())
    os.replace(pending, secret_path)
    fsync_dir(secret_path.parent)
    return secret_path


def add_arguments(sub: Any) -> None:
    """The enroll and rotate-secret subcommands."""
    from kiosk.cli_help import example

    e: argparse.ArgumentParser = sub.add_parser(
        "enroll", help="register with the backend using a one-time code",
        epilog=example("kiosk-provision enroll --backend https://backend.example:8444 --code 3F2A1C-... "
                       "--ca-file backend-ca.pem --group kiosk"))
    e.add_argument("--backend", required=True, help="the backend's enrollment URL (http(s)://host:port)")
    e.add_argument("--code", required=True, help="the one-time enrollment code from the operator")
    e.add_argument("--credentials-dir", default=None, help="where the key, certificates and secret go "
                                                           "(default: credentials/ beside the config)")
    e.add_argument("--ca-file", default=None, help="the CA to check the enrollment server's certificate against "
                                                 "(needed for https; default: the config's backend.ca_file)")
    e.add_argument("--group", default=None, help="group allowed to read the credentials (mode 0640), e.g. kiosk")
    e.add_argument("--no-verify", action="store_true", help="skip the signed test call after enrolling")
    sub.add_parser("rotate-secret", help="replace the terminal's HMAC secret (the old one stops working)",
                   epilog=example("kiosk-provision rotate-secret --config /etc/kiosk/kiosk.toml"))
