"""The terminal's one typed configuration file (TOML), validated at load.

pydantic does the validation because it reports the full key path and the offending
value of every error, which is what a technician needs on a half-written config; a
hand-written validator would have to rebuild that for each section.

Profiles: ``demo`` (the default: simulators and the embedded backend simulator) and
``production`` (real drivers only: a simulator or the embedded backend is refused, and a
missing device is a fault, never a silent fallback).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from kiosk.errors import ConfigError

DEVICE_NAMES = ("id_card", "pcsc", "receipt_printer", "a4_printer", "scanner", "camera", "speaker")

# Fixed demo credentials: public on purpose, refused by the production profile.
DEMO_TERMINAL_ID = "JN-DEMO-0001"
DEMO_HMAC_SECRET = "demo-terminal-secret-not-for-production"
# Ed25519 public key of the embedded backend simulator; its private seed is
# sha256(b"kiosk-demo-backend-ed25519-seed"), kept in the simulator.
DEMO_BACKEND_PUBLIC_KEY = "f6nOwU9j2M1BPTq5Vf9EHO3Y1/Rd0nf+oTTO8hXNtCw="


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TerminalConfig(_Strict):
    """Who this terminal is and where it stands."""

    id: str = DEMO_TERMINAL_ID
    name: str = "历下区泉城路24小时智慧警局"
    location: str = "Jinan, Lixia District"
    # Dates ("today", card expiry, the day counted in statistics) in the station's zone, as
    # the backend keeps them, whatever zone the machine itself is set to.
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from kiosk.localtime import zone_for

        zone_for(v)  # ValueError names the zone
        return v

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not v or len(v) > 32 or not all(c.isalnum() or c in "-_" for c in v):
            raise ValueError("must be 1-32 letters, digits, '-' or '_'")
        return v


class BackendConfig(_Strict):
    """How to reach the e-Jingtong backend, and the keys that prove both sides."""

    url: str = "embedded"  # "embedded" starts the simulator on loopback
    connect_timeout_s: float = Field(3.0, gt=0, le=60)
    read_timeout_s: float = Field(10.0, gt=0, le=300)
    retries: int = Field(2, ge=0, le=10)
    backoff_s: float = Field(0.2, ge=0, le=10)
    # How long an operation whose answer was lost is asked again (same idempotency key) before
    # the resident is told its outcome is unknown; recovery and the reconciler settle it later.
    unknown_outcome_s: float = Field(60.0, gt=0, le=3600)
    hmac_secret: str = DEMO_HMAC_SECRET
    hmac_secret_file: str = ""  # written by enrollment; wins over hmac_secret
    public_key: str = DEMO_BACKEND_PUBLIC_KEY  # base64 Ed25519, verifies documents and commands
    max_clock_skew_s: int = Field(300, ge=5, le=3600)
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""

    @field_validator("url")
    @classmethod
    def _url_shape(cls, v: str) -> str:
        if v != "embedded" and not v.startswith(("http://", "https://")):
            raise ValueError("must be 'embedded' or an http(s):// URL")
        return v.rstrip("/")

    def secret(self) -> bytes:
        """The HMAC secret, read from the enrollment file when one is configured."""
        if self.hmac_secret_file:
            try:
                return Path(self.hmac_secret_file).read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read backend.hmac_secret_file: {exc.strerror}",
                                  key="backend.hmac_secret_file", value=self.hmac_secret_file) from exc
        return self.hmac_secret.encode()


class DeviceConfig(_Strict):
    """One device: which driver, its options, and (for simulators) injected faults."""

    driver: str = "sim"  # sim, or a real driver name (serial, usb, network, cups, opencv, pcsc, sdl)
    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)
    faults: dict[str, Any] = Field(default_factory=dict)


def _default_devices() -> dict[str, DeviceConfig]:
    return {name: DeviceConfig() for name in DEVICE_NAMES}


class PathsConfig(_Strict):
    """Where state lives: journal, per-session folders, spool and logs."""

    state_dir: str = "~/.local/state/kiosk"

    def root(self) -> Path:
        """The expanded state directory."""
        return Path(os.path.expanduser(self.state_dir))


MIN_QUIET_BEFORE_WARNING_S = 10  # a visit starts with at least this long before "are you still there?"


class UiConfig(_Strict):
    """Touch UI settings."""

    language: Literal["zh_CN", "en"] = "zh_CN"
    # Seconds without a touch before the visit ends; the last idle_warning_s of them show the
    # warning, which one touch extends (WCAG 2.2.1: at least 20 s to answer it).
    idle_timeout_s: int = Field(90, ge=10, le=900)
    idle_warning_s: int = Field(20, ge=20, le=120)
    width: int = Field(1080, ge=320)
    height: int = Field(1920, ge=320)
    fullscreen: bool = False
    show_cursor: bool = True
    care_mode_default: bool = False  # every session starts in care mode (关怀模式): large type, paged lists
    # The home screen's large tiles (item ids); left out, the catalog's home_items.
    home_items: tuple[str, ...] | None = Field(None, max_length=4)
    # The attract screen (kiosk.screens.attract): after attract_after_s without a touch on home (0: never),
    # drifting text, and the backlight under backlight_dir dimmed to attract_brightness of its maximum.
    attract_after_s: float = Field(120, ge=0, le=86400)
    attract_brightness: float = Field(0.3, gt=0, le=1)
    backlight_dir: str = "/sys/class/backlight"
    # Against burn-in: the header moves a pixel every pixel_shift_every_s, at most pixel_shift_px (0: still).
    pixel_shift_px: int = Field(3, ge=0, le=8)
    pixel_shift_every_s: float = Field(1800, gt=0)
    # Frames a second (kiosk.screens.pace): maxfps while in use, idle_maxfps once nobody has touched for 10 s.
    maxfps: int = Field(60, ge=1, le=240)
    idle_maxfps: int = Field(15, ge=1, le=240)

    @model_validator(mode="after")
    def _quiet_before_the_warning(self) -> "UiConfig":
        if self.idle_timeout_s < self.idle_warning_s + MIN_QUIET_BEFORE_WARNING_S:
            raise ValueError(f"idle_timeout_s ({self.idle_timeout_s}) must be at least idle_warning_s "
                             f"({self.idle_warning_s}) + {MIN_QUIET_BEFORE_WARNING_S}: the warning would "
                             "cover the screen almost at once")
        return self

    @field_validator("home_items")
    @classmethod
    def _item_ids(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None:
            bad = [i for i in v if not re.fullmatch(r"[A-Z][0-9]{2}", i)]
            if bad:
                raise ValueError(f"not item ids: {', '.join(bad)}")
            if len(set(v)) != len(v):
                raise ValueError("an item is listed twice")
        return v


class PaymentConfig(_Strict):
    """QR payment polling."""

    poll_interval_s: float = Field(2.0, gt=0, le=30)
    timeout_s: int = Field(180, ge=10, le=1800)


class PrintingConfig(_Strict):
    """Documents: an optional PDF digital signature (PAdES, pyhanko) on every A4 document."""

    pdf_sign_key_file: str = ""  # PEM private key; empty = documents are not PDF-signed
    pdf_sign_cert_file: str = ""  # PEM certificate of that key
    pdf_sign_chain_files: tuple[str, ...] = ()  # intermediate CA certificates
    pdf_sign_passphrase_file: str = ""
    pdf_sign_reason: str = "自助终端出具"

    @model_validator(mode="after")
    def _key_and_cert_together(self) -> "PrintingConfig":
        if bool(self.pdf_sign_key_file) != bool(self.pdf_sign_cert_file):
            raise ValueError("pdf_sign_key_file and pdf_sign_cert_file go together: set both or neither")
        return self


class UpkeepConfig(_Strict):
    """24/7 upkeep: health polling, log rotation, journal retention and the free-disk floor."""

    health_interval_s: float = Field(10.0, ge=1, le=600)  # devices and backend polled this often
    upkeep_interval_s: float = Field(3600.0, ge=60, le=86400)  # journal pruning while running
    min_free_mb: int = Field(200, ge=1)  # below this on the state folder: only guides are served
    resume_free_mb: int = Field(250, ge=1)  # transactions come back above this (no flapping at the edge)
    log_max_mb: float = Field(5.0, gt=0, le=1024)  # one log file's size before it rotates
    log_backups: int = Field(5, ge=1, le=100)  # rotated files kept; the oldest is deleted
    journal_retention_days: int = Field(30, ge=1, le=3650)

    @model_validator(mode="after")
    def _resume_above_floor(self) -> "UpkeepConfig":
        if self.resume_free_mb < self.min_free_mb:
            raise ValueError("resume_free_mb must be at least min_free_mb")
        return self


class HeartbeatConfig(_Strict):
    """Heartbeats to the backend: how often, and how many are kept on disk while it is away."""

    interval_s: float = Field(60.0, ge=1, le=3600)
    queue_max: int = Field(500, ge=1, le=100000)


def parse_listen(value: str) -> tuple[str, int]:
    """(host, port) of a ``HOST:PORT`` listen address (``[::1]:9464`` for IPv6). Raises ValueError."""
    import ipaddress

    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT with a port 0-65535, e.g. 127.0.0.1:9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError("the host must be an IP address or localhost, e.g. 127.0.0.1:9464") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress

    return host == "localhost" or ipaddress.ip_address(host).is_loopback


class MetricsConfig(_Strict):
    """The Prometheus endpoint: served when ``enabled`` (or `kiosk run --metrics-port`), on ``listen``.

    ``listen`` stays on loopback unless set otherwise; the production profile also wants
    ``allow_remote = true`` before it listens beyond loopback (e.g. ``0.0.0.0:9464`` for the
    control room's Prometheus), so a copied demo value cannot open it by accident.
    """

    enabled: bool = False
    listen: str = "127.0.0.1:9464"
    allow_remote: bool = False

    @field_validator("listen")
    @classmethod
    def _listen_shape(cls, v: str) -> str:
        parse_listen(v)
        return v

    def address(self, port: int | None = None) -> tuple[str, int]:
        """(host, port) to serve on; ``port`` (`--metrics-port`) replaces the configured port, never the host."""
        host, configured = parse_listen(self.listen)
        return host, configured if port is None else port

    def remote(self) -> bool:
        """True when ``listen`` reaches beyond loopback."""
        return not is_loopback(parse_listen(self.listen)[0])


class MaintenanceConfig(_Strict):
    """Maintenance mode: where the masked log export goes (a USB stick's mount point); '' = <state_dir>/exports."""

    export_dir: str = ""


class SpeechConfig(_Strict):
    """Voice guidance: the station's defaults, which every session starts from and returns to."""

    enabled: bool = True
    voice: Literal["main", "full"] = "main"  # read-out: main prompts only, or every control and line shown
    # Volume levels in dB relative to the engine's full level; the resident steps through them.
    # Level 0 is where a session starts: the amplifier is set so that it is a normal speaking level.
    volume_levels_db: tuple[float, ...] = (-20.0, -14.0, -8.0, -4.0, 0.0)
    volume_level: int = Field(0, ge=0)
    rate_wpm: int = Field(160, ge=80, le=320)  # espeak-ng words a minute
    rate_step_wpm: int = Field(20, ge=5, le=100)
    private_handset: bool = False  # the output is a handset held to the ear: personal data may be spoken
    voice_zh: str = "cmn-latn-pinyin"  # espeak-ng voice reading tone-numbered pinyin
    voice_en: str = "en-us"
    cache_mb: int = Field(64, ge=1, le=1024)  # rendered prompts kept in memory
    warm_up: bool = True  # render the fixed prompts at start, off the UI thread

    @model_validator(mode="after")
    def _volume_span(self) -> "SpeechConfig":
        levels = self.volume_levels_db
        if len(levels) < 3 or list(levels) != sorted(set(levels)) or levels[-1] > 0:
            raise ValueError("volume_levels_db: at least 3 distinct levels, ascending, none above 0 dB")
        if levels[-1] - levels[0] < 20:
            raise ValueError("volume_levels_db: the levels must span at least 20 dB")
        if not any(lv - levels[0] >= 12 for lv in levels[1:-1]):
            raise ValueError("volume_levels_db: one level between the lowest and the highest must be "
                             "at least 12 dB above the lowest")
        if self.volume_level >= len(levels):
            raise ValueError("volume_level: must index volume_levels_db")
        return self


class FaceConfig(_Strict):
    """The face step: where a face counts as placed, how long it is held, how long liveness may take."""

    min_face_width: float = Field(0.22, gt=0, lt=1)  # face width / frame width; smaller: "move closer"
    max_face_width: float = Field(0.55, gt=0, le=1)  # larger: "move back"
    centre_tolerance: float = Field(0.12, gt=0, le=0.5)  # face centre off the frame centre, in frame fractions
    hold_s: float = Field(1.0, ge=0, le=10)  # placed this long (and alive): captured by itself
    liveness_window_s: float = Field(5.0, gt=0, le=60)  # from first placed: blink (or turn) by then
    turn_after_s: float = Field(2.5, ge=0, le=60)  # no blink by then: ask to turn the head instead
    blink_max_closed_s: float = Field(0.8, gt=0, le=5)  # eyes closed longer than this is not a blink
    settle_s: float = Field(0.2, ge=0, le=5)  # a new guidance is shown once it held this long

    @model_validator(mode="after")
    def _sizes_in_order(self) -> "FaceConfig":
        if self.min_face_width >= self.max_face_width:
            raise ValueError("min_face_width must be below max_face_width")
        return self


class UpdateConfig(_Strict):
    """Fleet updates: the TUF repository releases come from, and the trusted root.json it was provisioned with."""

    repo: str = ""  # URL R serving R/metadata/ and R/targets/; "" = no updates configured
    tuf_root: str = ""  # root.json placed by `kiosk-provision init --tuf-root`; read once, on first use
    # When a switch may happen, in station time (terminal.timezone); may cross midnight.
    window: str = "02:00-05:00"
    gate_s: float = Field(default=120.0, ge=5, le=3600)  # the new kiosk has this long to be ready and healthy
    check_interval_h: float = Field(default=6.0, ge=1, le=168)  # kiosk-update.timer's period

    @field_validator("window")
    @classmethod
    def _window_shape(cls, v: str) -> str:
        from kiosk.services.update_status import parse_window

        parse_window(v)  # ValueError says what is wrong
        return v

    @field_validator("repo")
    @classmethod
    def _repo_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL or empty")
        return v.rstrip("/")


class HelpConfig(_Strict):
    """Calling the duty officer from any screen: how often an open request is asked for its answer."""

    poll_s: float = Field(3.0, ge=0.5, le=60)  # an open request's answer is asked for this often
    screenshot_width: int = Field(360, ge=120, le=1080)  # the masked screenshot's width in pixels
    # While a call waits for the officer the idle timeout is this long (a resident waiting is not gone).
    wait_idle_s: int = Field(600, ge=10, le=3600)


class KeypadConfig(_Strict):
    """The tactile keypad (a USB numeric keypad): which key does what, by keypad keycode name."""

    enabled: bool = True
    # key name (numpad0-9, numpaddecimal, numpaddivide, numpadmul, numpadsubstract, numpadadd,
    # numpadenter) -> action (kiosk.services.keypad.Action); the whole map replaces the default.
    map: dict[str, str] = Field(default_factory=lambda: dict(_keypad_default_map()))

    @field_validator("map")
    @classmethod
    def _known_keys(cls, v: dict[str, str]) -> dict[str, str]:
        from kiosk.services.keypad import check_map

        return check_map(v)


def _keypad_default_map() -> dict[str, str]:
    from kiosk.services.keypad import DEFAULT_MAP

    return DEFAULT_MAP


class TouchConfig(_Strict):
    """The touch screen's supervisor (kiosk.services.touch_supervisor): which node, how long it may stay away."""

    enabled: bool = False  # on the cabinet: watch the touch screen's evdev node (needs group input)
    device: str = ""  # its node, e.g. /dev/input/by-id/usb-...-event-if00; "" = the first touch screen found
    reopen_timeout_s: float = Field(60.0, ge=5, le=3600)  # gone this long: watchdog pings stop, systemd restarts
    poll_s: float = Field(1.0, ge=0.1, le=30)  # the node is drained and probed this often


class KioskConfig(_Strict):
    """The whole configuration of one terminal."""

    profile: Literal["demo", "production"] = "demo"
    terminal: TerminalConfig = Field(default_factory=TerminalConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    devices: dict[str, DeviceConfig] = Field(default_factory=_default_devices)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    ui: UiConfig = Field(default_factory=UiConfig)
    payment: PaymentConfig = Field(default_factory=PaymentConfig)
    printing: PrintingConfig = Field(default_factory=PrintingConfig)
    upkeep: UpkeepConfig = Field(default_factory=UpkeepConfig)
    heartbeat: HeartbeatConfig = Field(default_factory=HeartbeatConfig)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    speech: SpeechConfig = Field(default_factory=SpeechConfig)
    face: FaceConfig = Field(default_factory=FaceConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    help: HelpConfig = Field(default_factory=HelpConfig)
    keypad: KeypadConfig = Field(default_factory=KeypadConfig)
    touch: TouchConfig = Field(default_factory=TouchConfig)

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, v: dict[str, DeviceConfig]) -> dict[str, DeviceConfig]:
        unknown = sorted(set(v) - set(DEVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown device {unknown[0]!r}; known: {', '.join(DEVICE_NAMES)}")
        return {**_default_devices(), **v}

    @model_validator(mode="after")
    def _production_is_real(self, info: ValidationInfo) -> "KioskConfig":
        if self.profile != "production":
            return self
        b = self.backend
        if b.url == "embedded":
            raise ValueError("backend.url: the production profile needs a real backend URL, not 'embedded'")
        if not b.url.startswith("https://"):
            raise ValueError("backend.url: the production profile talks to the backend over https only")
        # What `kiosk-provision enroll` provides: checked unless the config is being written before it.
        if not (info.context or {}).get("before_enrollment"):
            if not b.hmac_secret_file and b.hmac_secret == DEMO_HMAC_SECRET:
                raise ValueError("backend.hmac_secret: the production profile refuses the demo secret; "
                                 "enroll the terminal")
            if not b.ca_file:
                raise ValueError("backend.ca_file: the production profile pins the backend's CA; "
                                 "enroll the terminal (kiosk-provision enroll writes it)")
            for key in ("client_cert_file", "client_key_file"):
                if not getattr(b, key):
                    raise ValueError(f"backend.{key}: the production profile proves the terminal with its client "
                                     "certificate (mutual TLS); enroll the terminal")
            if b.public_key == DEMO_BACKEND_PUBLIC_KEY:
                raise ValueError("backend.public_key: the production profile refuses the demo backend key "
                                 "(its private seed is in the source); set the backend's document key")
        for name, dev in self.devices.items():
            if dev.enabled and dev.driver == "sim":
                raise ValueError(f"devices.{name}.driver: the production profile never uses a simulator; run "
                                 f"`kiosk-provision init --detect` or set the device's driver ([devices.{name}] "
                                 "driver, see docs/HARDWARE.md)")
        if self.metrics.remote() and not self.metrics.allow_remote:
            raise ValueError("metrics.listen: the production profile serves metrics beyond loopback only when asked "
                             "with metrics.allow_remote = true")
        return self

    @model_validator(mode="after")
    def _production_chips_prove_themselves(self) -> "KioskConfig":
        # A chip whose EF.SOD is not chained to a trusted CSCA proves nothing: anyone can sign one.
        pcsc = self.devices["pcsc"]
        if self.profile == "production" and pcsc.enabled and not str(pcsc.options.get("trust_store") or ""):
            raise ValueError("devices.pcsc.options.trust_store: the production profile needs a CSCA trust store "
                             "(a certificate file or folder) to check passport and permit chips")
        return self

    def device(self, name: str) -> DeviceConfig:
        """The config of one device by name."""
        return self.devices[name]


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        else:
            data = getattr(data, part, None)
    return data


def _format_error(err: ValidationError) -> ConfigError:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    value = first.get("input")
    msg = first["msg"].removeprefix("Value error, ")
    if not key and msg.startswith(tuple(f"{s}." for s in ("backend", "devices", "metrics"))):
        key, msg = (part.strip() for part in msg.split(":", 1))  # model checks name their key
        value = _lookup(value, key)
        if value is None:  # the key was left at its default
            value = _lookup(KioskConfig.model_construct(), key)
    elif key and re.fullmatch(r"[a-z_]+:", msg.split(" ", 1)[0]):  # a section's own check names its key
        field, msg = (part.strip() for part in msg.split(":", 1))
        section, key = key, f"{key}.{field}"
        value = _lookup(value, field)
        if value is None:
            value = _lookup(getattr(KioskConfig.model_construct(), section, None), field)
    shown = value if not isinstance(value, dict) else "{...}"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return ConfigError(f"config key {key or '(root)'}: {msg}; got {shown!r}{more}", key=key, value=value)


# Keys `kiosk-provision enroll` fills in; a production config written before enrollment lacks them.
ENROLLED_KEYS = ("backend.hmac_secret", "backend.hmac_secret_file", "backend.ca_file", "backend.client_cert_file",
                 "backend.client_key_file", "backend.public_key")


def from_dict(data: dict[str, Any], *, before_enrollment: bool = False) -> KioskConfig:
    """Validate a parsed config mapping. Raises ConfigError naming the key and the value.

    ``before_enrollment`` (for `kiosk-provision init` and `enroll`) accepts a production config
    still lacking what enrollment writes (:data:`ENROLLED_KEYS`); every other rule holds.
    """
    try:
        return KioskConfig.model_validate(data, context={"before_enrollment": before_enrollment})
    except ValidationError as err:
        raise _format_error(err) from None


# The installed terminal's config: read when neither --config nor $KIOSK_CONFIG names one.
SYSTEM_CONFIG = "/etc/kiosk/kiosk.toml"
DEMO_DEFAULTS = "demo defaults"


@dataclass(frozen=True)
class ConfigSource:
    """Which config a command reads: a file (and why that one) or the demo defaults."""

    path: str | None  # None: the built-in demo defaults
    origin: str  # "--config", "$KIOSK_CONFIG", SYSTEM_CONFIG or DEMO_DEFAULTS

    def describe(self) -> str:
        """The line a command prints so nobody wonders which config it acted on."""
        if self.path is None:
            return f"config: demo defaults (no --config, no $KIOSK_CONFIG, no {SYSTEM_CONFIG})"
        if self.origin == SYSTEM_CONFIG:
            return f"config: {self.path}"
        return f"config: {self.path} (from {self.origin})"


def resolve(flag: str | os.PathLike[str] | None = None) -> ConfigSource:
    """The one rule: ``--config FILE``, else ``$KIOSK_CONFIG``, else SYSTEM_CONFIG when it exists, else demo."""
    if flag:
        return ConfigSource(str(flag), "--config")
    env = os.environ.get("KIOSK_CONFIG")
    if env:
        return ConfigSource(env, "$KIOSK_CONFIG")
    if Path(SYSTEM_CONFIG).is_file():
        return ConfigSource(SYSTEM_CONFIG, SYSTEM_CONFIG)
    return ConfigSource(None, DEMO_DEFAULTS)


def load(path: str | os.PathLike[str] | None = None) -> KioskConfig:
    """Load the config ``path`` names, or the one :func:`resolve` picks when it is None.

    Raises ConfigError for a missing file, bad TOML, or a bad key or value.
    """
    path = resolve(path).path
    if not path:
        return from_dict({})
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}", key="", value=str(p)) from None
    try:
        import tomllib  # only for a file: ~20 ms of compiled patterns at import

        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config {p} is not valid TOML: {exc}", key="", value=str(p)) from None
    return from_dict(data)
