"""Real speaker driver: audio out through SDL2 (the copy Kivy's wheel bundles), headset from ALSA.

SDL picks the sound system (ALSA, PulseAudio, PipeWire) as it does for any SDL program;
``SDL_AUDIODRIVER`` chooses one (``disk`` writes what would sound to ``SDL_DISKAUDIOFILE``,
which is how the tests check the samples that reached the output without a sound card).
Samples are queued with ``SDL_QueueAudio`` and dropped with ``SDL_ClearQueuedAudio``, so a
stop takes effect within one device buffer. Where the codec reports its headphone jack as an
ALSA control (``options.jack_control``, e.g. "Headphone Jack" on card ``jack_card``), a
plugged headset makes the listening private. Only ctypes: no Kivy import; the library is
found through Kivy's package folder without importing it.

Options: device (SDL output device name; "" = the default), library (path of libSDL2;
"" = Kivy's bundled copy, else the system's), jack_card ("default"), jack_control ("").
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError, DeviceOffline, NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.speaker import Audio, Speaker

log = logging.getLogger(__name__)

SDL_INIT_AUDIO = 0x10
AUDIO_S16LSB = 0x8010
SDL_AUDIO_STOPPED = 0
SDL_IFACE_CARD = 0  # SND_CTL_ELEM_IFACE_CARD: where codecs put their jack switches
OPTIONS = ("device", "library", "jack_card", "jack_control")


class _AudioSpec(ctypes.Structure):
    _fields_ = [("freq", ctypes.c_int), ("format", ctypes.c_uint16), ("channels", ctypes.c_uint8),
                ("silence", ctypes.c_uint8), ("samples", ctypes.c_uint16), ("padding", ctypes.c_uint16),
                ("size", ctypes.c_uint32), ("callback", ctypes.c_void_p), ("userdata", ctypes.c_void_p)]


def sdl_library_path() -> str:
    """Path of the SDL2 library Kivy's wheel bundles, else the system's ('' when neither is there)."""
    spec = importlib.util.find_spec("kivy")  # finds the package without running its __init__
    if spec is not None and spec.origin:
        libs = Path(spec.origin).parent.parent / "Kivy.libs"
        found = sorted(libs.glob("libSDL2-2*.so*"))
        if found:
            return str(found[0])
    return ctypes.util.find_library("SDL2") or ""


def _load_sdl(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    lib.SDL_GetError.restype = ctypes.c_char_p
    lib.SDL_GetCurrentAudioDriver.restype = ctypes.c_char_p
    lib.SDL_InitSubSystem.argtypes = [ctypes.c_uint32]
    lib.SDL_QuitSubSystem.argtypes = [ctypes.c_uint32]
    lib.SDL_OpenAudioDevice.restype = ctypes.c_uint32
    lib.SDL_OpenAudioDevice.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_AudioSpec),
                                        ctypes.POINTER(_AudioSpec), ctypes.c_int]
    lib.SDL_QueueAudio.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32]
    lib.SDL_GetQueuedAudioSize.restype = ctypes.c_uint32
    lib.SDL_GetQueuedAudioSize.argtypes = [ctypes.c_uint32]
    lib.SDL_ClearQueuedAudio.argtypes = [ctypes.c_uint32]
    lib.SDL_PauseAudioDevice.argtypes = [ctypes.c_uint32, ctypes.c_int]
    lib.SDL_CloseAudioDevice.argtypes = [ctypes.c_uint32]
    lib.SDL_GetAudioDeviceStatus.argtypes = [ctypes.c_uint32]
    return lib


def read_alsa_switch(card: str, control: str) -> bool | None:
    """The value of a boolean card-interface ALSA control (a jack switch); None when it cannot be read."""
    path = ctypes.util.find_library("asound")
    if not path or not control:
        return None
    lib = ctypes.CDLL(path)
    ctl, eid, val = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    if lib.snd_ctl_open(ctypes.byref(ctl), card.encode(), 0) < 0:
        return None
    try:
        if lib.snd_ctl_elem_id_malloc(ctypes.byref(eid)) < 0 or lib.snd_ctl_elem_value_malloc(ctypes.byref(val)) < 0:
            return None
        lib.snd_ctl_elem_id_set_interface(eid, SDL_IFACE_CARD)
        lib.snd_ctl_elem_id_set_name(eid, control.encode())
        lib.snd_ctl_elem_value_set_id(val, eid)
        if lib.snd_ctl_elem_read(ctl, val) < 0:
            return None
        return bool(lib.snd_ctl_elem_value_get_boolean(val, 0))
    finally:
        if eid:
            lib.snd_ctl_elem_id_free(eid)
        if val:
            lib.snd_ctl_elem_value_free(val)
        lib.snd_ctl_close(ctl)


class SdlSpeaker(Speaker):
    """Speaker on SDL2 audio (``driver = "sdl"``)."""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        opts = dict(options or {})
        opts.pop("driver", None)
        for key in opts:
            if key not in OPTIONS:
                where = f"devices.{name}.options.{key}"
                raise ConfigError(f"{where}: unknown option; known: {', '.join(OPTIONS)}", key=where, value=opts[key])
        self.device_name = str(opts.get("device", ""))
        self.library = str(opts.get("library", "")) or sdl_library_path()
        self.jack_card = str(opts.get("jack_card", "default"))
        self.jack_control = str(opts.get("jack_control", ""))
        self._sdl: ctypes.CDLL | None = None
        self._dev = 0
        self._rate = 0
        self._buffer_s = 0.0
        self._drained_at = 0.0
        self._audio_lock = threading.RLock()
        self._wanted = False  # open() was called (by the runtime at start): a missing output is looked for again
        self.driver_name = ""

    # --- device --------------------------------------------------------------------
    def open(self) -> None:
        """Start SDL's audio and open the output. Raises NoDevice."""
        with self._audio_lock:
            self._wanted = True  # asked for once: status() and play() keep trying until it opens
            if self._sdl is not None:
                return
            if not self.library:
                raise NoDevice("libSDL2 not found (neither Kivy's bundled copy nor the system's)", device=self.name)
            try:
                sdl = _load_sdl(self.library)
            except OSError as exc:
                raise NoDevice(f"libSDL2 cannot be loaded: {exc}", device=self.name) from None
            if sdl.SDL_InitSubSystem(SDL_INIT_AUDIO) != 0:
                raise NoDevice(f"SDL audio: {sdl.SDL_GetError().decode(errors='replace')}", device=self.name)
            self._sdl = sdl
            self.driver_name = (sdl.SDL_GetCurrentAudioDriver() or b"").decode()
            try:
                self._open_device(22050)
            except NoDevice:
                sdl.SDL_QuitSubSystem(SDL_INIT_AUDIO)
                self._sdl = None
                raise
            log.info("speaker %s: SDL audio driver %s", self.name, self.driver_name)

    def _open_device(self, rate: int) -> None:
        assert self._sdl is not None
        if self._dev:
            self._sdl.SDL_CloseAudioDevice(self._dev)
            self._dev = 0
        want = _AudioSpec(freq=rate, format=AUDIO_S16LSB, channels=1, samples=1024)
        got = _AudioSpec()
        dev = self._sdl.SDL_OpenAudioDevice(self.device_name.encode() or None, 0, ctypes.byref(want),
                                            ctypes.byref(got), 0)  # 0: SDL converts to what the card takes
        if not dev:
            raise NoDevice(f"SDL audio output: {self._sdl.SDL_GetError().decode(errors='replace')}", device=self.name)
        self._dev, self._rate = dev, rate
        self._buffer_s = got.samples / got.freq if got.freq else 0.05
        self._sdl.SDL_PauseAudioDevice(dev, 0)  # the queue sounds as soon as samples arrive

    def close(self) -> None:
        """Close the output and SDL's audio; safe to call twice."""
        with self._audio_lock:
            if self._sdl is None:
                return
            if self._dev:
                self._sdl.SDL_ClearQueuedAudio(self._dev)
                self._sdl.SDL_CloseAudioDevice(self._dev)
                self._dev = 0
            self._sdl.SDL_QuitSubSystem(SDL_INIT_AUDIO)
            self._sdl = None

    def status(self) -> DeviceStatus:
        """Online, busy, offline (the output went away) or no device; never raises.

        An output SDL reports stopped (unplugged) is closed and opened again here, as is one
        that did not open at start, so a speaker plugged in later is used without a restart.
        Before any ``open()`` it is no device and nothing is tried.
        """
        with self._audio_lock:
            if self._sdl is not None and self._dev and self._sdl.SDL_GetAudioDeviceStatus(self._dev) == SDL_AUDIO_STOPPED:
                self.close()
                try:
                    self.open()
                except NoDevice as err:
                    return status(DeviceState.OFFLINE, detail=f"audio output stopped (unplugged?): {err.detail}")
                if self._sdl.SDL_GetAudioDeviceStatus(self._dev) == SDL_AUDIO_STOPPED:
                    return status(DeviceState.OFFLINE, detail="audio output stopped (unplugged?)")
                log.warning("speaker %s: audio output opened again", self.name)
            if self._sdl is None or not self._dev:
                if not self._wanted:
                    return status(DeviceState.NO_DEVICE, detail="speaker not opened")
                try:
                    self.open()  # absent at start, or unplugged: plugged in since?
                except NoDevice as err:
                    return status(DeviceState.NO_DEVICE, detail=err.detail)
            busy = self._sdl.SDL_GetQueuedAudioSize(self._dev) > 0
        conditions = {"headset"} if self.headset_connected() else set()
        return status(DeviceState.BUSY if busy else DeviceState.ONLINE, conditions=conditions,
                      detail=f"SDL {self.driver_name}")

    def headset_connected(self) -> bool:
        """Whether the configured ALSA jack control reads "plugged" (False when none is configured or readable)."""
        return bool(self.jack_control) and bool(read_alsa_switch(self.jack_card, self.jack_control))

    # --- primitives ----------------------------------------------------------------
    def _start(self, audio: Audio, label: str) -> str:
        """Queue the samples on the SDL device. Raises NoDevice, DeviceOffline."""
        with self._audio_lock:
            if self._sdl is not None and self._dev and self._sdl.SDL_GetAudioDeviceStatus(self._dev) == SDL_AUDIO_STOPPED:
                self.close()  # the output went away: opened again below, in case it is back
            if self._sdl is None:
                if not self._wanted:
                    raise NoDevice("speaker not opened", device=self.name)
                self.open()  # closed after the output went away, or absent at start: back now? Raises NoDevice
            if audio.rate != self._rate:
                self._open_device(audio.rate)
            if self._sdl.SDL_GetAudioDeviceStatus(self._dev) == SDL_AUDIO_STOPPED:
                raise DeviceOffline("audio output stopped", device=self.name)
            data = audio.samples
            if self._sdl.SDL_QueueAudio(self._dev, data, len(data)) != 0:
                raise DeviceOffline(f"SDL_QueueAudio: {self._sdl.SDL_GetError().decode(errors='replace')}",
                                    device=self.name)
            self._drained_at = 0.0
        log.debug("speaker %s: %.1f s %r", self.name, audio.duration_s, label)
        return ""

    def _playing(self) -> bool:
        with self._audio_lock:
            if self._sdl is None or not self._dev:
                return False
            if self._sdl.SDL_GetQueuedAudioSize(self._dev) > 0:
                return True
            # the queue is empty once the last buffer is taken; it sounds for one buffer more
            now = time.monotonic()
            if not self._drained_at:
                self._drained_at = now
            return now - self._drained_at < self._buffer_s

    def _halt(self) -> None:
        with self._audio_lock:
            if self._sdl is not None and self._dev:
                self._sdl.SDL_ClearQueuedAudio(self._dev)
