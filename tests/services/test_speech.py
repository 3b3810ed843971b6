"""The speech service: real espeak-ng audio into the simulated sound card's WAV files."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import from_dict
from kiosk.errors import DeviceOffline
from kiosk.hardware.simulators.speaker import SimSpeaker
from kiosk.hardware.speaker import Audio
from kiosk.services.speech import (Defaults, Personal, SpeechService, Spell, Spoken, compose, fixed_prompts,
                                   personal, step)
from kiosk.services.speech.engine import CacheKey, PromptCache

NAME = "王小明"
ID_NUMBER = "37010219900307123X"


@pytest.fixture
def speaker(tmp_path: Path) -> SimSpeaker:
    return SimSpeaker("speaker", {"output_dir": str(tmp_path / "speaker"), "realtime": False})


@pytest.fixture
def speech(speaker: SimSpeaker) -> Any:
    service = SpeechService(speaker, Defaults())
    yield service
    service.close()


def wav(path: str) -> Audio:
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return Audio(w.readframes(w.getnframes()), w.getframerate())


def said(speech: SpeechService) -> list[Spoken]:
    assert speech.wait_idle(60)
    return speech.spoken()


def test_say_returns_at_once_and_speaks_on_its_own_thread(tmp_path: Path) -> None:
    slow = SimSpeaker("speaker", {"output_dir": str(tmp_path), "realtime": False, "delay_s": 0.5})
    speech = SpeechService(slow)
    threads: list[str] = []
    speech.listeners.append(lambda _s: threads.append(threading.current_thread().name))
    try:
        assert speech.say("请将身份证放在读卡区")
        assert slow.played == [] and speech.spoken()[0].completed is False  # the card has not got it yet
        (entry,) = said(speech)
        assert entry.completed and threads == ["kiosk-speech"]
    finally:
        speech.close()


def test_the_wav_is_the_engines_real_speech_with_its_length_and_loudness(speech: SpeechService) -> None:
    speech.say("请将身份证放在读卡区")  # 10 syllables
    speech.say("Please place your ID card on the reader.", "en")
    zh, en = said(speech)
    assert zh.completed and en.completed and zh.audio.endswith(".wav")
    for entry, syllables in ((zh, 10), (en, 12)):
        audio = wav(entry.audio)
        assert audio.rate == 22050
        assert 0.12 * syllables < audio.duration_s < 0.6 * syllables
        assert -45 < audio.rms_dbfs() < -20  # speech at the lowest (default) level: 20 dB under full
        silent = sum(1 for i in range(0, audio.frames - 441, 441)
                     if Audio(audio.samples[2 * i:2 * (i + 441)], audio.rate).rms_dbfs() < -70)
        assert silent < audio.frames / 441 * 0.6  # mostly sound, not silence


def test_volume_steps_span_20_db_with_a_12_db_step_and_reset_at_session_end(speech: SpeechService) -> None:
    levels = []
    for _ in range(6):
        speech.say("请取卡", interrupt=False)
        levels.append(speech.volume_db)
        speech.volume_up()
    entries = said(speech)
    loudness = [wav(e.audio).rms_dbfs() for e in entries]
    assert levels == [-20.0, -14.0, -8.0, -4.0, 0.0, 0.0]  # the top stays the top
    assert loudness[4] - loudness[0] == pytest.approx(20, abs=0.5)
    assert loudness[2] - loudness[0] == pytest.approx(12, abs=0.5)  # an intermediate step of at least 12 dB
    assert speech.volume_down() == -4.0
    speech.faster()
    speech.end_session()
    assert speech.volume_db == -20.0 and speech.rate == 160 and speech.spoken() == []


def test_rate_changes_the_speech_and_resets(speech: SpeechService) -> None:
    speech.say("请将身份证放在读卡区")
    assert speech.faster() == 180 and speech.faster() == 200
    speech.say("请将身份证放在读卡区")
    normal, fast = (wav(e.audio).duration_s for e in said(speech))
    assert fast < normal * 0.9
    assert speech.set_rate(1000) == 320 and speech.slower() == 300
    speech.end_session()
    assert speech.rate == 160


def test_queued_utterances_keep_their_order(speech: SpeechService) -> None:
    for text in ("户籍证明", step(2, 5), "请将身份证放在读卡区"):
        speech.say(text)
    assert [e.text for e in said(speech)] == ["户籍证明", "第2步，共5步", "请将身份证放在读卡区"]


def test_interrupt_stops_at_once_and_drops_the_queue(tmp_path: Path) -> None:
    card = SimSpeaker("speaker", {"output_dir": str(tmp_path)})  # sounds in real time
    speech = SpeechService(card)
    try:
        speech.say("欢迎使用二十四小时智慧警局，请选择您要办理的业务。")
        speech.say("这一句排在后面")
        deadline = time.monotonic() + 10
        while not card.played:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        speech.interrupt()
        assert speech.wait_idle(1.0)  # at once: well inside one syllable, not the seconds left
        first, queued = speech.spoken()
        assert first.audio and not first.completed
        assert queued.audio == "" and not queued.completed
        assert len(card.played) == 1
        speech.say("新的页面", interrupt=True)
        assert said(speech)[-1].text == "新的页面"
    finally:
        speech.close()


def test_repeat_says_the_last_utterance_again(speech: SpeechService) -> None:
    assert not speech.repeat()  # nothing said yet
    speech.say("请正视摄像头")
    speech.say(step(3, 5))
    assert speech.repeat()
    assert [e.text for e in said(speech)] == ["请正视摄像头", "第3步，共5步", "第3步，共5步"]
    speech.end_session()
    assert not speech.repeat()


def test_personal_data_is_spoken_only_while_listening_is_private(speech: SpeechService,
                                                                 speaker: SimSpeaker) -> None:
    greeting = compose("办理人：{name}，身份证号{number}", name=personal("name", NAME),
                       number=personal("id_number", ID_NUMBER))
    speech.say(greeting)
    speaker.plug_headset()
    assert speech.private
    speech.say(greeting)
    speaker.plug_headset(False)
    speech.set_private(True)
    speech.say(greeting)
    public, headset, forced = said(speech)
    assert public.text == "办理人：姓名已读取，身份证号身份证号已读取" and not public.private
    assert NAME in headset.text and ID_NUMBER in headset.text and headset.private
    assert NAME in forced.text
    assert wav(headset.audio).duration_s > wav(public.audio).duration_s  # eighteen characters were read out
    assert all(NAME not in p.label and ID_NUMBER not in p.label for p in speaker.played)  # logs stay masked
    assert not any(NAME in k.text for k in list(speech.cache._items))  # a name is never cached
    speech.end_session()
    assert not speech.private


def test_a_station_handset_is_private(speaker: SimSpeaker) -> None:
    speech = SpeechService(speaker, Defaults(private_handset=True))
    try:
        speech.say(["姓名：", Personal(NAME, "姓名已读取")])
        assert said(speech)[0].text == f"姓名：{NAME}"
    finally:
        speech.close()


def test_codes_are_spelled_and_english_follows_the_language(speech: SpeechService) -> None:
    speech.say(["验证码：", Spell("7K3Q9XPM")])
    speech.set_language("en")
    speech.say_msg("Step {n} of {total}", n=2, total=5)
    speech.say_msg("Step {n} of {total}", "zh_CN", n=2, total=5)
    code, english, chinese = said(speech)
    assert code.text == "验证码：7K3Q9XPM" and wav(code.audio).duration_s > 3  # nine characters, one by one
    assert (english.text, english.lang) == ("Step 2 of 5", "en")
    assert (chinese.text, chinese.lang) == ("第2步，共5步", "zh_CN")


def test_full_read_out_is_spoken_only_when_turned_on(speech: SpeechService) -> None:
    assert not speech.say("开始办理，按钮", level="full")
    speech.set_readout("full")
    assert speech.say("开始办理，按钮", level="full")
    assert [e.text for e in said(speech)] == ["开始办理，按钮"]
    speech.end_session()
    assert speech.readout == "main"
    with pytest.raises(ValueError):
        speech.set_readout("loud")  # type: ignore[arg-type]


def test_warm_prompts_reach_the_card_from_the_cache(speech: SpeechService) -> None:
    speech.warm(fixed_prompts(), background=False)
    assert len(speech.cache) > 40
    speech.say("户籍证明，第2步，共5步。")  # a new heading, a warmed step clause
    speech.say("第2步，共5步")
    speech.say("请将身份证放在读卡区")
    heading, step_clause, prompt = said(speech)
    assert not heading.cached and step_clause.cached and prompt.cached
    assert Audio.from_wav(Path(prompt.audio).read_bytes()).duration_s > 1


def test_the_face_screens_guidance_is_warmed_as_it_is_said(speech: SpeechService) -> None:
    speech.warm(fixed_prompts(languages=("zh_CN",)), background=False)
    speech.say("请靠近一点。")  # as the face screen says "move closer" when it changes
    speech.say("请保持不动。请慢慢眨一下眼睛。")
    closer, blink = said(speech)
    assert closer.cached and blink.cached


def test_no_speaker_or_a_failing_one_loses_nothing_else(tmp_path: Path) -> None:
    speech = SpeechService(None)
    try:
        speech.say("请将身份证放在读卡区")
        (entry,) = said(speech)
        assert entry.text == "请将身份证放在读卡区" and not entry.completed and entry.audio == ""
    finally:
        speech.close()
    card = SimSpeaker("speaker", {"output_dir": str(tmp_path), "realtime": False}, {"offline": 1})
    speech = SpeechService(card)
    try:
        speech.say("第一句")
        speech.say("第二句")
        first, second = said(speech)
        assert not first.completed and second.completed  # the thread outlived the fault
        with pytest.raises(DeviceOffline):
            card.inject("offline", 1)
            card.play(Audio.silence(0.1, 22050))
    finally:
        speech.close()


def test_disabled_speech_says_nothing(speaker: SimSpeaker) -> None:
    speech = SpeechService(speaker, enabled=False)
    try:
        assert not speech.say("请将身份证放在读卡区")
        assert said(speech) == [] and speaker.played == []
    finally:
        speech.close()


def test_config_sets_the_stations_defaults(speaker: SimSpeaker) -> None:
    cfg = from_dict({"ui": {"language": "en"}, "speech": {"voice": "full", "volume_level": 2, "rate_wpm": 140,
                                                          "private_handset": True, "cache_mb": 8}})
    speech = SpeechService.from_config(cfg, speaker)
    try:
        assert (speech.readout, speech.volume_db, speech.rate, speech.language) == ("full", -8.0, 140, "en")
        assert speech.cache.max_bytes == 8 * 1024 * 1024  # an empty cache is false: it was swapped for 64 MiB
        assert speech.private
        speech.volume_up()
        speech.end_session()
        assert speech.volume_db == -8.0
    finally:
        speech.close()


def test_the_runtime_speaks_through_the_configured_speaker(runtime: Any) -> None:
    speech = runtime.speech
    runtime.devices.speaker.options["realtime"] = False
    speech.say("请将身份证放在读卡区")
    (entry,) = said(speech)
    assert entry.completed and Path(entry.audio).parent == runtime.state_dir / "speaker"
    thread = runtime.warm_speech()
    assert thread is not None
    thread.join(60)
    assert len(speech.cache) > 100  # fixed prompts, step clauses, item and category names


def test_listeners_hear_of_utterances_that_end_after_the_session_ended(tmp_path: Path) -> None:
    slow = SimSpeaker("speaker", {"output_dir": str(tmp_path), "realtime": False, "delay_s": 0.3})
    speech = SpeechService(slow)
    heard: list[Spoken] = []
    speech.listeners.append(heard.append)
    try:
        speech.say("欢迎使用，请选择业务。")
        speech.say(("办理人：", Personal("王小明", "姓名已读取")))
        speech.end_session()  # the log is forgotten; the demo's listener still gets both, in order
        assert speech.wait_idle(60)
        assert [s.text for s in heard] == ["欢迎使用，请选择业务。", "办理人：姓名已读取"]
        assert speech.spoken() == []
    finally:
        speech.close()


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use() -> int:
    """Bytes glibc's heaps hand out now (``mallinfo2().uordblks``: blocks mapped on their own not counted)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    gc.collect()
    return int(libc.mallinfo2().uordblks)


def test_the_prompt_cache_keeps_its_audio_outside_the_heap() -> None:
    # Kept prompts below glibc's 128 KiB mapping bound used to stay in the heap among longer-lived blocks, and each
    # one dropped left a hole there. Once the renderer's own copies are gone, the heap holds none of the kept audio.
    size, count = 100 * 1024, 40
    cache = PromptCache(max_bytes=(count - 1) * size)  # one prompt more than the budget holds
    keys = [CacheKey("zh_CN", "cmn", 175, f"prompt {i}") for i in range(count)]
    before = heap_in_use()
    for i, key in enumerate(keys):
        cache.put(key, Audio(bytes([i]) * size, 22050))  # the renderer's copy: gone after the call
    kept = heap_in_use() - before
    assert kept < size * 4, f"{kept / 2**20:.1f} MiB of kept audio in the heap"
    assert cache.get(keys[0]) is None and len(cache) == count - 1  # the least recently used went
    again = cache.get(keys[5])
    assert again == Audio(bytes([5]) * size, 22050) and cache.size_bytes == (count - 1) * size
    cache.clear()
    assert len(cache) == 0 and cache.size_bytes == 0
    assert again.samples[:3] == bytes([5]) * 3  # a copy handed out outlives the cache's mapping
