"""`kiosk-provision selftest`: every configured device, the backend, and the clock, checked now.

Devices: each is opened alone (one absent device does not hide the others), its status
read through ``Devices.statuses()``, then closed; a device passes when it can take work
(online or busy, no supply out); paper low is a warning. Backend: a signed ``/health``
through the real adapter when it is available (which also proves the terminal id and
secret), else a plain GET. Clock: an unsigned GET of ``/api/v1/health`` whose ``time``
(or the HTTP ``Date`` header) is compared with the local clock at the request's midpoint;
request signatures carry timestamps, so drift beyond half the allowed skew fails.
"""
from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Callable

from kiosk.config import KioskConfig
from kiosk.errors import KioskError

HEALTH_PATH = "/api/v1/health"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str  # device:<name>, backend, clock
    ok: bool
    summary: str
    warning: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Every check; ``ok`` only when all passed."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `selftest --json`."""
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def human(self) -> str:
        """The technician's report, one line per check."""
        lines = []
        for c in self.checks:
            mark = "FAIL" if not c.ok else ("WARN" if c.warning else " OK ")
            lines.append(f"[{mark}] {c.name:24} {c.summary}")
        lines.append("selftest passed" if self.ok else "selftest FAILED")
        return "\n".join(lines)


def check_devices(cfg: KioskConfig) -> list[Check]:
    """Open, query and close each configured device."""
    from kiosk.hardware.base import SupplyState
    from kiosk.hardware.factory import build_devices

    try:
        devices = build_devices(cfg)
    except KioskError as err:
        return [Check("devices", False, f"{err.code}: {err.detail}", data={"code": err.code})]
    checks: list[Check] = []
    open_errors: dict[str, KioskError] = {}
    try:
        for name, device in devices.all():
            try:
                device.open()
            except KioskError as err:
                open_errors[name] = err
        statuses = devices.statuses()
    finally:
        devices.close()
    for name, _device in devices.all():
        st = statuses[name]
        data = st.to_dict() | {"detail": st.detail}
        if name in open_errors:
            err = open_errors[name]
            checks.append(Check(f"device:{name}", False, f"cannot open: {err.code}: {err.detail}",
                                data=data | {"code": err.code}))
            continue
        low = sorted(k for k, v in st.supplies.items() if v == SupplyState.LOW)
        words = [st.state.value] + sorted(st.conditions) + [f"{k} {v.value}" for k, v in sorted(st.supplies.items())]
        checks.append(Check(f"device:{name}", st.usable, ", ".join(words) + (f" ({st.detail})" if st.detail else ""),
                            warning=bool(low), data=data))
    return checks


def check_catalog(cfg: KioskConfig, device_checks: list[Check]) -> Check:
    """The devices the catalog's items need: production fails when one is disabled or did not pass, naming the items."""
    from kiosk.services.catalog import Catalog
    from kiosk.services.readiness import describe, shortfalls

    catalog = Catalog.load()
    passed = {c.name.removeprefix("device:") for c in device_checks if c.ok and c.name.startswith("device:")}
    failed = {c.name.removeprefix("device:"): c.summary for c in device_checks if not c.ok}
    lacking = [s for s in shortfalls(cfg, catalog) if s.why == "disabled"]
    lacking += [s for s in shortfalls(cfg, catalog, {n: None for n in passed}) if s.why == "missing"
                and s.device in failed]
    items = sorted({i for s in lacking for i in s.items})
    data = {"profile": cfg.profile, "devices_lacking": [s.to_dict() for s in lacking], "items_unavailable": items}
    if not lacking:
        return Check("catalog", True, f"every device the {len(catalog.items)} items need is configured", data=data)
    summary = f"{len(items)} of {len(catalog.items)} items cannot run:\n" + "\n".join(
        f"      {line}" for line in describe(lacking, catalog))
    if cfg.profile != "production":
        return Check("catalog", True, summary, warning=True, data=data)
    return Check("catalog", False, summary + "\n      the production profile needs these devices: run "
                 "`kiosk-provision init --detect` or set each device's driver", data=data)


def _backend_url(cfg: KioskConfig, base_url: str | None) -> str:
    return (base_url or cfg.backend.url).rstrip("/")


def check_backend(cfg: KioskConfig, base_url: str) -> Check:
    """The backend's /health, signed through kiosk.services.backend when present."""
    if importlib.util.find_spec("kiosk.services.backend") is not None:
        from kiosk.services.backend import BackendClient

        try:
            client = BackendClient.from_config(cfg, base_url=base_url)
            answer = client.health()
        except KioskError as err:
            return Check("backend", False, f"{base_url}: {err.code}: {err.detail}", data={"code": err.code})
        except OSError as exc:  # e.g. the pinned CA file is missing: requests says so before connecting
            return Check("backend", False, f"{base_url}: {exc}", data={"code": "backend_unreachable"})
        return Check("backend", answer.get("status") == "ok",
                     f"{base_url}: {answer.get('status')} (signed), version {answer.get('version', '?')}",
                     data={"url": base_url, "answer": answer, "signed": True})
    status, body, _ = _plain_health(cfg, base_url)
    ok = status == 200 and isinstance(body, dict) and body.get("status") == "ok"
    return Check("backend", ok, f"{base_url}: HTTP {status}", data={"url": base_url, "signed": False})


def _plain_health(cfg: KioskConfig, base_url: str) -> tuple[int, Any, dict[str, str]]:
    import requests

    verify: Any = cfg.backend.ca_file or True
    cert = (cfg.backend.client_cert_file, cfg.backend.client_key_file) if cfg.backend.client_cert_file else None
    resp = requests.get(base_url + HEALTH_PATH, timeout=(cfg.backend.connect_timeout_s, cfg.backend.read_timeout_s),
                        verify=verify, cert=cert)
    try:
        body = resp.json()
    except ValueError:
        body = None
    return resp.status_code, body, dict(resp.headers)


def _server_time(body: Any, headers: dict[str, str]) -> float | None:
    if isinstance(body, dict) and isinstance(body.get("time"), str):
        try:
            stamp = datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
            if stamp.tzinfo is not None:
                return stamp.timestamp()
        except ValueError:
            pass
    date = headers.get("Date") or headers.get("date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return None
    return None


def check_clock(cfg: KioskConfig, base_url: str, now: Callable[[], float] = time.time) -> Check:
    """Local clock against the backend's; fails beyond half of backend.max_clock_skew_s."""
    import requests

    limit = cfg.backend.max_clock_skew_s / 2
    try:
        before = now()
        _, body, headers = _plain_health(cfg, base_url)
        after = now()
    except (requests.RequestException, OSError) as exc:
        return Check("clock", False, f"cannot read the backend's time: {type(exc).__name__}", data={"limit_s": limit})
    server = _server_time(body, headers)
    if server is None:
        return Check("clock", False, "the backend's answer carries no time", data={"limit_s": limit})
    local = (before + after) / 2
    skew = local - server
    # the backend's time is whole seconds at worst (Date header): allow for that and the round trip
    uncertainty = (after - before) / 2 + 1.0
    ok = abs(skew) <= limit + uncertainty
    direction = "ahead of" if skew > 0 else "behind"
    return Check("clock", ok, f"local clock {abs(skew):.1f} s {direction} the backend (limit {limit:.0f} s)",
                 data={"skew_s": round(skew, 3), "limit_s": limit, "round_trip_s": round(after - before, 3)})


def run_selftest(cfg: KioskConfig, base_url: str | None = None, now: Callable[[], float] = time.time) -> Report:
    """Every check; the embedded backend is started on loopback for the duration when configured."""
    checks = check_devices(cfg)
    checks.append(check_catalog(cfg, checks))
    url = _backend_url(cfg, base_url)
    sim = None
    if url == "embedded":
        from kiosk.backend_sim.server import serve

        sim = serve("127.0.0.1", 0, terminals={cfg.terminal.id: cfg.backend.secret()})
        url = sim.url.rstrip("/")
    try:
        checks.append(check_backend(cfg, url))
        checks.append(check_clock(cfg, url, now))
    finally:
        if sim is not None:
            sim.stop()
    return Report(tuple(checks))


def print_report(report: Report, as_json: bool) -> None:
    """Print the report as text or JSON."""
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        print(report.human())
