"""`kiosk selftest --release`: does this installed release work, without touching a device or the running kiosk?

Run by `kiosk-provision update apply` inside a freshly built release folder before
``current`` is switched to it. Checks, each timed, in order:

- config: the terminal's config loads with this release's config model;
- catalog: the 71 items validate;
- translations: every catalog of every language loads, and Chinese is really translated;
- certificate: a specimen household registration certificate renders to a PDF;
- receipt: a specimen transaction receipt renders to ESC/POS bytes;
- ui: the Kivy UI builds offscreen and draws its first frame of the home screen.

No device is opened: the UI check runs on simulators and the embedded backend simulator,
with its state in a temporary folder, so a running kiosk's devices, journal and session
are never touched. The config check reads the real config, nothing else does.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from kiosk import __version__
from kiosk.errors import KioskError

FIRST_FRAME_TIMEOUT_S = 90.0
SPECIMEN_PAYLOAD = '{"d":"SELFTEST-0001","t":"household_certificate","v":"SELFTEST"}'
# An invented resident: the self-test prints nothing and keeps nothing, but a render needs content.
SPECIMEN = {
    "document_id": "SELFTEST-0001", "doc_type": "household_certificate", "verification_code": "SELFTEST",
    "title_zh": "户籍证明", "title_en": "Household Registration Certificate",
    "issued_at": "2026-01-01T12:00:00+08:00", "qr_payload": SPECIMEN_PAYLOAD, "signature": "",
    "content": {"name": "测试员", "sex": "男", "ethnicity": "汉", "birth_date": "1990-01-01",
                "id_number": "11010119900101007X", "address": "自检地址1号", "household_id": "000000000000",
                "head_name": "测试员", "relation_to_head": "户主", "police_station": "自检派出所",
                "purpose": "自检"},
}


@dataclass
class SelftestContext:
    """What the checks share: the config file given, the config once loaded, a temporary folder."""

    config_path: str | None
    tmp: Path
    config: Any = None


@dataclass(frozen=True)
class ReleaseCheck:
    """One line of the release self-test."""

    name: str
    ok: bool
    detail: str
    ms: float


def _config(ctx: SelftestContext) -> str:
    from kiosk.config import load

    ctx.config = load(ctx.config_path)
    return f"profile {ctx.config.profile}, terminal {ctx.config.terminal.id}"


def _catalog(_ctx: SelftestContext) -> str:
    from kiosk.services.catalog import Catalog

    return f"{len(Catalog.load().items)} items"


def _translations(_ctx: SelftestContext) -> str:
    from kiosk.i18n import LANGUAGES, translate, translations

    for lang in LANGUAGES:
        translations(lang)
    probe = KioskError.message_en
    if translate(probe, "zh_CN") == probe:
        raise RuntimeError("the Chinese catalog does not translate the error messages")
    return f"{', '.join(LANGUAGES)}"


def _certificate(ctx: SelftestContext) -> str:
    from print_templates.documents import render_pdf

    terminal_id = ctx.config.terminal.id if ctx.config is not None else "SELFTEST"
    path = render_pdf(SPECIMEN, ctx.tmp / "certificate.pdf", terminal_id=terminal_id)
    data = path.read_bytes()
    if not data.startswith(b"%PDF-"):
        raise RuntimeError("the certificate is not a PDF")
    return f"{len(data)} bytes of PDF"


def _receipt(_ctx: SelftestContext) -> str:
    from print_templates.receipts import render_receipt

    data = render_receipt("transaction", {"item_name_zh": "户籍证明", "item_name_en": "Household certificate",
                                          "terminal_id": "SELFTEST", "reference": "SELFTEST-0001",
                                          "verification_code": "SELFTEST", "qr_payload": SPECIMEN_PAYLOAD})
    if not data.startswith(b"\x1b@"):
        raise RuntimeError("the receipt does not start with ESC @")
    return f"{len(data)} bytes of ESC/POS"


def ui_config(cfg: Any, state_dir: Path) -> Any:
    """The config the UI check runs on: the terminal's screen, simulators, embedded backend, a temporary state."""
    from kiosk.config import from_dict

    return from_dict({"terminal": cfg.terminal.model_dump(), "ui": cfg.ui.model_dump(),
                      "paths": {"state_dir": str(state_dir)}})


def _ui(ctx: SelftestContext) -> str:
    from kiosk.config import load

    cfg = ui_config(ctx.config if ctx.config is not None else load(None), ctx.tmp / "state")
    os.environ.setdefault("KIVY_HOME", str(ctx.tmp / "kivy"))
    from kiosk.app import KioskApp, build_runtime, prepare_kivy

    prepare_kivy(cfg.ui, headless=True)
    runtime = build_runtime(cfg)
    try:
        from kivy.base import EventLoop, runTouchApp
        from kivy.core.window import Window

        app = KioskApp(runtime, cfg)
        frames = []
        Window.bind(on_flip=lambda *_: frames.append(1))
        app._run_prepare()  # build() and open the window, without entering the blocking loop
        runTouchApp(embedded=True)
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while not (frames and app.sm is not None and app.sm.current == "home"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no frame of the home screen within {FIRST_FRAME_TIMEOUT_S:.0f} s")
            EventLoop.idle()
        size = f"{int(Window.width)}x{int(Window.height)}"
        app.stop()
    finally:
        runtime.close()
    return f"home screen drawn ({size}, {len(frames)} frame(s))"


CHECKS: tuple[tuple[str, Callable[[SelftestContext], str]], ...] = (
    ("config", _config), ("catalog", _catalog), ("translations", _translations),
    ("certificate", _certificate), ("receipt", _receipt), ("ui", _ui),
)


def run_checks(config_path: str | None) -> list[ReleaseCheck]:
    """Every check; one that fails does not stop the others (without a config the UI runs on the defaults)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="kiosk-release-selftest-") as tmp_name:
        ctx = SelftestContext(config_path, Path(tmp_name))
        for name, check in CHECKS:
            started = time.perf_counter()
            try:
                detail, ok = check(ctx), True
            except KioskError as err:
                detail, ok = f"{err.code}: {err.detail or err.message('en')}", False
            except Exception as exc:  # the point of a self-test: report whatever breaks
                detail, ok = f"{type(exc).__name__}: {exc}", False
            results.append(ReleaseCheck(name, ok, detail, round((time.perf_counter() - started) * 1000, 1)))
    return results


def cli_selftest(args: argparse.Namespace) -> int:
    """`kiosk selftest --release [--json]`: exit 0 when every check passed."""
    if not args.release:
        print("kiosk selftest checks an installed release: pass --release "
              "(devices, backend and clock: kiosk-provision selftest)")
        return 2
    results = run_checks(getattr(args, "config", None))
    ok = all(r.ok for r in results)
    if args.json:
        print(json.dumps({"ok": ok, "version": __version__, "checks": [asdict(r) for r in results]},
                         ensure_ascii=False))
    else:
        for r in results:
            print(f"[{' OK ' if r.ok else 'FAIL'}] {r.name:13} {r.detail} ({r.ms:.0f} ms)")
        print(f"release {__version__}: self-test {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1
