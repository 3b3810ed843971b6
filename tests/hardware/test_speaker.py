"""Speaker: the PCM model, the simulator's WAV files, and the SDL driver on SDL's disk output."""
from __future__ import annotations

import logging
import subprocess
import threading
import time
import wave
from pathlib import Path

import pytest

from kiosk.errors import ConfigError, DeviceOffline, NoDevice
from kiosk.hardware.base import DeviceState
from kiosk.hardware.simulators.speaker import SimSpeaker
from kiosk.hardware.speaker import Audio
from kiosk.hardware.speaker_sdl import SdlSpeaker, read_alsa_switch, sdl_library_path


def espeak(text: str, voice: str = "cmn-latn-pinyin") -> Audio:
    """A real utterance from espeak-ng (the engine the kiosk speaks with)."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True,
                         timeout=30).stdout
    return Audio.from_wav(_fix_stream_header(wav))


def _fix_stream_header(wav: bytes) -> bytes:
    # espeak-ng writes its WAV header before it knows the length; the data runs to the end
    data_at = wav.index(b"data") + 8
    n = len(wav) - data_at
    return wav[:4] + (n + data_at - 8).to_bytes(4, "little") + wav[8:data_at - 4] + n.to_bytes(4, "little") + wav[data_at:]


@pytest.fixture(scope="module")
def utterance() -> Audio:
    return espeak("qing3 jiang1 shen1 fen4 zheng4 fang4 zai4 du2 ka3 qu1")


# --- Audio ------------------------------------------------------------------------------
def test_audio_wav_round_trip_and_gain(utterance: Audio) -> None:
    assert 1.0 < utterance.duration_s < 5.0 and utterance.rate == 22050
    assert Audio.from_wav(utterance.to_wav()) == utterance
    quieter = utterance.scaled(-12)
    assert quieter.frames == utterance.frames
    assert quieter.rms_dbfs() == pytest.approx(utterance.rms_dbfs() - 12, abs=0.3)
    assert Audio.silence(0.5, 22050).rms_dbfs() == float("-inf")
    with pytest.raises(ValueError):
        Audio.from_wav(b"RIFF garbage")
    with pytest.raises(ValueError):
        utterance + Audio.silence(0.1, 16000)


# --- simulator --------------------------------------------------------------------------
def test_simulator_writes_each_utterance_as_a_wav_and_logs_its_text(tmp_path: Path, utterance: Audio,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    speaker = SimSpeaker("speaker", {"output_dir": str(tmp_path), "realtime": False})
    with caplog.at_level(logging.INFO):
        played = speaker.play(utterance, label="请将身份证放在读卡区")
    assert played and played.recording
    with wave.open(played.recording) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (22050, 1, 2)
        assert w.readframes(w.getnframes()) == utterance.samples
    assert speaker.played[0].label == "请将身份证放在读卡区"
    assert "请将身份证放在读卡区" in caplog.text
    assert speaker.status().state == DeviceState.ONLINE


def test_simulator_sounds_for_the_utterance_length_and_stops_at_once(tmp_path: Path, utterance: Audio) -> None:
    speaker = SimSpeaker("speaker", {"output_dir": str(tmp_path)})
    threading.Timer(0.2, speaker.stop).start()
    started = time.monotonic()
    played = speaker.play(utterance)
    assert not played and time.monotonic() - started < 0.6
    cancel = threading.Event()
    cancel.set()
    assert not speaker.play(utterance, cancel=cancel)  # cancelled before it reached the card
    assert len(speaker.played) == 1


def test_simulator_skipping_ahead_plays_each_utterance_whole_at_once(tmp_path: Path) -> None:
    speaker = SimSpeaker("speaker", {"output_dir": str(tmp_path)})
    long = Audio.silence(30.0, 22050)  # would sound half a minute
    results: list[object] = []
    playing = threading.Thread(target=lambda: results.append(speaker.play(long, label="long")))
    playing.start()
    deadline = time.monotonic() + 10
    while speaker.status().state is not DeviceState.BUSY and time.monotonic() < deadline:
        time.sleep(0.01)
    assert speaker.status().state is DeviceState.BUSY  # sounding for its length
    speaker.skip_ahead()
    playing.join(10)
    assert not playing.is_alive() and results[0]  # returned, and as played whole (not stopped)
    assert speaker.play(long, label="next")  # the next one sounds at once too (no thread needed)
    assert [p.label for p in speaker.played] == ["long", "next"] and all(p.path.is_file() for p in speaker.played)
    speaker.skip_ahead(False)
    results.clear()
    playing = threading.Thread(target=lambda: results.append(speaker.play(long, label="again")))
    playing.start()
    deadline = time.monotonic() + 10
    while speaker.status().state is not DeviceState.BUSY and time.monotonic() < deadline:
        time.sleep(0.01)
    assert speaker.status().state is DeviceState.BUSY and playing.is_alive()  # sounds for its length again
    speaker.stop()
    playing.join(10)
    assert results == [results[0]] and not results[0]


def test_simulator_keeps_the_newest_files_and_knows_faults_and_the_headset(tmp_path: Path) -> None:
    speaker = SimSpeaker("speaker", {"output_dir": str(tmp_path), "realtime": False, "keep": 2})
    beep = Audio.silence(0.05, 22050)
    for _ in range(4):
        speaker.play(beep)
    assert len(list(tmp_path.glob("*.wav"))) == 2 and len(speaker.played) == 2
    assert speaker.played_total == 4  # a long-running kiosk still tells a new utterance from the last
    assert not speaker.headset_connected()
    speaker.plug_headset()
    assert speaker.headset_connected() and "headset" in speaker.status().conditions
    speaker.inject("offline", 1)
    with pytest.raises(DeviceOffline):
        speaker.play(beep)
    speaker.play(beep)
    speaker.inject("no_device")
    assert speaker.status().state == DeviceState.NO_DEVICE and not speaker.headset_connected()
    with pytest.raises(NoDevice):
        speaker.play(beep)
    with pytest.raises(ConfigError):
        SimSpeaker("speaker", {"volume": 3})


# --- SDL driver -------------------------------------------------------------------------
def test_sdl_library_is_kivys_bundled_copy() -> None:
    assert "Kivy.libs" in sdl_library_path() and "libSDL2" in sdl_library_path()


def test_sdl_driver_puts_the_utterances_samples_on_the_output(tmp_path: Path, utterance: Audio,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "card.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(out))
    speaker = SdlSpeaker("speaker", {"driver": "sdl"})
    assert speaker.status().state == DeviceState.NO_DEVICE  # not opened yet
    speaker.open()
    try:
        assert speaker.driver_name == "disk" and speaker.status().usable
        loud = utterance.scaled(-6)
        started = time.monotonic()
        assert speaker.play(loud, label="x")
        assert time.monotonic() - started >= loud.duration_s * 0.9  # it waited for the card
    finally:
        speaker.close()
    raw = out.read_bytes()
    at = raw.find(loud.samples)
    assert at >= 0 and at % 2 == 0, "the utterance's samples did not reach the output in one piece"
    assert raw[:at].strip(b"\0") == b"" and raw[at + len(loud.samples):].strip(b"\0") == b""
    speaker.close()  # twice is fine


def test_sdl_driver_stop_drops_the_rest_at_once(tmp_path: Path, utterance: Audio,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "card.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(out))
    speaker = SdlSpeaker("speaker", {})
    speaker.open()
    long = utterance + utterance + utterance
    try:
        threading.Timer(0.3, speaker.stop).start()
        started = time.monotonic()
        assert not speaker.play(long)
        assert time.monotonic() - started < 0.8
    finally:
        speaker.close()
    raw = out.read_bytes()
    at = raw.find(long.samples[:8820])  # its first 0.2 s
    assert at >= 0
    tail = raw[at:]
    same = next((i for i, (a, b) in enumerate(zip(tail, long.samples)) if a != b), min(len(tail), len(long.samples)))
    assert 8820 <= same < len(long.samples) / 2  # it began, and most of it never sounded
    assert tail[same:].strip(b"\0") == b""  # after the stop: nothing but silence


def test_sdl_driver_without_a_sound_system_is_no_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-sound-system")
    speaker = SdlSpeaker("speaker", {})
    with pytest.raises(NoDevice):
        speaker.open()
    assert speaker.status().state == DeviceState.NO_DEVICE
    with pytest.raises(NoDevice):
        speaker.play(Audio.silence(0.1, 22050))
    with pytest.raises(ConfigError):
        SdlSpeaker("speaker", {"volum": 3})
    with pytest.raises(NoDevice):
        SdlSpeaker("speaker", {"library": "/nonexistent/libSDL2.so"}).open()


def test_headset_reads_the_alsa_jack_control_and_is_not_assumed_when_unreadable() -> None:
    # This machine has no sound card: the control cannot be read, so listening is not private.
    assert read_alsa_switch("hw:0", "Headphone Jack") is None
    assert read_alsa_switch("default", "") is None
    speaker = SdlSpeaker("speaker", {"jack_card": "hw:0", "jack_control": "Headphone Jack"})
    assert speaker.headset_connected() is False
    assert SdlSpeaker("speaker", {}).headset_connected() is False
