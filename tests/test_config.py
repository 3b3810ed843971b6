"""`kiosk config --config FILE` and the production profile: only what was provisioned is trusted.

Each case starts from an enrolled production config that loads, changes one thing, and runs
the real command: it must fail (exit 78) naming the key and the value.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from kiosk import config as kconfig
from kiosk.cli import main
from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEVICE_NAMES
from kiosk.errors import ConfigError

BACKEND_KEY = "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="  # a key of the backend's, not the demo one
CREDENTIALS = "/etc/kiosk/credentials"


def enrolled() -> dict[str, Any]:
    """A production config as `kiosk-provision enroll` leaves it (devices off: not the point here)."""
    return {"profile": "production",
            "terminal": {"id": "JN-LX-0042"},
            "backend": {"url": "https://backend.example:8443", "public_key": BACKEND_KEY,
                        "hmac_secret_file": f"{CREDENTIALS}/hmac.secret", "ca_file": f"{CREDENTIALS}/backend-ca.pem",
                        "client_cert_file": f"{CREDENTIALS}/terminal.crt",
                        "client_key_file": f"{CREDENTIALS}/terminal.key"},
            "devices": {name: {"enabled": False} for name in DEVICE_NAMES}}


def _check(tmp_path: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "kiosk.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    status = main(["config", "--config", str(path)])
    err = capsys.readouterr().err
    said = f"kiosk: config: {path} (from --config)\n"  # every command says which config it read
    assert err.startswith(said)
    return status, err.removeprefix(said)


def test_an_enrolled_production_config_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(tmp_path, enrolled(), capsys) == (0, "")


@pytest.mark.parametrize("key, value", [
    ("url", "http://backend.example:8080"),            # not https
    ("ca_file", ""),                                    # no pinned CA
    ("client_cert_file", ""),                           # no client certificate
    ("client_key_file", ""),                            # no client key
    ("public_key", DEMO_BACKEND_PUBLIC_KEY),            # the demo key, whose private seed is in the source
])
def test_production_refuses_what_was_not_provisioned(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     key: str, value: str) -> None:
    data = enrolled()
    data["backend"][key] = value
    status, err = _check(tmp_path, data, capsys)
    assert status == 78
    assert f"config key backend.{key}:" in err and repr(value) in err


def test_production_refuses_the_demo_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = enrolled()
    del data["backend"]["hmac_secret_file"]
    data["backend"]["hmac_secret"] = DEMO_HMAC_SECRET
    status, err = _check(tmp_path, data, capsys)
    assert status == 78 and "config key backend.hmac_secret:" in err


def test_production_refuses_metrics_beyond_loopback_unless_asked(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = {**enrolled(), "metrics": {"enabled": True, "listen": "0.0.0.0:9464"}}
    status, err = _check(tmp_path, data, capsys)
    assert status == 78 and "config key metrics.listen:" in err and "'0.0.0.0:9464'" in err
    data["metrics"]["allow_remote"] = True
    assert _check(tmp_path, data, capsys) == (0, "")


def test_the_keys_enrollment_writes_may_be_missing_only_before_enrollment() -> None:
    data = enrolled()
    for key in ("hmac_secret_file", "ca_file", "client_cert_file", "client_key_file", "public_key"):
        del data["backend"][key]
    cfg = kconfig.from_dict(data, before_enrollment=True)
    assert cfg.profile == "production"
    with pytest.raises(ConfigError) as err:
        kconfig.from_dict(data)
    assert err.value.key in kconfig.ENROLLED_KEYS
    data["backend"]["url"] = "http://backend.example"  # what enrollment does not fix stays refused
    with pytest.raises(ConfigError) as err:
        kconfig.from_dict(data, before_enrollment=True)
    assert err.value.key == "backend.url"


def test_the_idle_warning_gives_at_least_20_seconds() -> None:
    ui = kconfig.from_dict({}).ui
    assert (ui.idle_warning_s, ui.idle_timeout_s) == (20, 90)
    with pytest.raises(ConfigError, match="ui.idle_warning_s"):
        kconfig.from_dict({"ui": {"idle_warning_s": 19}})
    # The warning is the last part of the timeout: a timeout that leaves no quiet time before it is refused.
    with pytest.raises(ConfigError, match="idle_timeout_s .25. must be at least idle_warning_s .20. . 10"):
        kconfig.from_dict({"ui": {"idle_timeout_s": 25}})
    assert kconfig.from_dict({"ui": {"idle_timeout_s": 30, "idle_warning_s": 20}}).ui.idle_timeout_s == 30


def test_home_items_override_the_catalog_and_an_unknown_id_is_refused_at_start(tmp_path: Path) -> None:
    from kiosk.services.catalog import Catalog
    from kiosk.services.runtime import home_items

    catalog = Catalog.load()
    assert kconfig.from_dict({}).ui.home_items is None
    default = kconfig.from_dict({})
    assert [i.id for i in home_items(catalog, default)] == ["H01", "S01", "T02"]
    chosen = kconfig.from_dict({"ui": {"home_items": ["T03", "H01"]}})
    assert [i.id for i in home_items(catalog, chosen)] == ["T03", "H01"]
    for bad, problem in ((["h01"], "not item ids: h01"), (["H01", "H01"], "listed twice"),
                         (["H01", "H02", "H03", "H04", "H05"], "at most 4")):
        with pytest.raises(ConfigError, match=problem):
            kconfig.from_dict({"ui": {"home_items": bad}})
    unknown = kconfig.from_dict({"ui": {"home_items": ["H99"]}, "paths": {"state_dir": str(tmp_path)}})
    with pytest.raises(ConfigError, match="ui.home_items: unknown item id 'H99'") as info:
        home_items(catalog, unknown)
    assert info.value.key == "ui.home_items"
# --- docs/config.example.toml shows every key --------------------------------------------------
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "config.example.toml"


def _model_keys(model: type, prefix: str = "") -> set[str]:
    """Dotted keys of a config model, sections expanded (the devices table is checked on its own)."""
    from pydantic import BaseModel

    keys: set[str] = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _model_keys(ann, f"{prefix}{name}.")
        elif name != "devices":
            keys.add(f"{prefix}{name}")
    return keys


def _toml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        if isinstance(value, dict) and f"{prefix}{name}" != "devices":
            keys |= _toml_keys(value, f"{prefix}{name}.")
        elif f"{prefix}{name}" != "devices":
            keys.add(f"{prefix}{name}")
    return keys


def test_the_example_config_shows_every_key_of_the_model_with_its_default():
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    model = _model_keys(kconfig.KioskConfig)
    shown = _toml_keys(data)
    # A key without a default value (None, which TOML cannot spell) is shown commented out, with an example value.
    text = EXAMPLE.read_text(encoding="utf-8")
    defaults = kconfig.KioskConfig()

    def default(key: str) -> Any:
        value: Any = defaults
        for part in key.split("."):
            value = getattr(value, part)
        return value

    commented = {k for k in model - shown if default(k) is None and f"\n# {k.rsplit('.', 1)[1]} = " in text}
    assert model - shown - commented == set(), f"keys the example lacks: {sorted(model - shown - commented)}"
    model -= commented
    assert shown - model == set(), f"keys the model does not have: {sorted(shown - model)}"
    defaults = kconfig.KioskConfig()
    for key in sorted(model):
        value: Any = data
        expected: Any = defaults
        for part in key.split("."):
            value, expected = value[part], getattr(expected, part)
        assert value == (list(expected) if isinstance(expected, tuple) else expected), key
    assert set(data["devices"]) == set(DEVICE_NAMES)
    device_fields = set(kconfig.DeviceConfig.model_fields)
    assert set().union(*(set(t) for t in data["devices"].values())) == device_fields
    assert kconfig.from_dict(data).profile == "demo"  # and the whole example loads
