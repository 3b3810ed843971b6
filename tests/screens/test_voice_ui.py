"""Voice guidance on the touch screen: what each screen says, and the controls, through real touches.

The speaker is the simulator (it replaces only the sound card): every utterance's real
espeak-ng audio is written to a WAV, and it "sounds" for the utterance's length, so a touch
that interrupts it arrives while it is still sounding.
"""
from __future__ import annotations

import wave
from typing import Any

import pytest

from kiosk.hardware.base import DeviceState
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.hardware.speaker import Audio
from kiosk.i18n import translate
from kiosk.services.speech import Utterance
from tests.screens.test_screens import open_guide, start_h01

pytestmark = pytest.mark.ui


def zh(msgid: str) -> str:
    return translate(msgid, "zh_CN")


def said(ui: Any) -> list[Any]:
    return ui.app.runtime.speech.spoken()


def wait_said(ui: Any, predicate: Any, what: str) -> Any:
    """Run the UI until an utterance matching ``predicate`` has been asked for; that utterance."""
    return ui.wait_until(lambda: next((s for s in said(ui) if predicate(s.text)), None), what)


def wav(path: str) -> Audio:
    with wave.open(path, "rb") as w:
        return Audio(w.readframes(w.getnframes()), w.getframerate())


def sounding(speaker: Any) -> bool:
    return speaker.status().state == DeviceState.BUSY


@pytest.fixture
def voice(ui: Any) -> Any:
    """The shared app at home with a fresh speech log; the headset unplugged afterwards."""
    speech = ui.app.runtime.speech
    speech.end_session()
    yield ui
    ui.app.runtime.devices.get("speaker").plug_headset(False)
    if ui.app.voice_full:
        ui.app.toggle_voice()


def test_each_screen_says_its_title_step_and_instruction_as_it_appears(voice: Any) -> None:
    ui, speech = voice, voice.app.runtime.speech
    item = ui.app.runtime.catalog.get("H01")
    open_guide(ui, "H01")
    wait_said(ui, lambda t: zh("Service guide") in t and item.name_zh in t, "the guide spoken")
    ui.tap_id("start_button")
    ui.wait_screen("identify")
    spoken = wait_said(ui, lambda t: zh("Identity check") in t, "the identify screen spoken")
    total = ui.app.sm.get_screen("identify").ids.step_bar.total
    assert total >= 3
    assert f"第1步，共{total}步" in spoken.text and zh("Place your ID card on the reader") in spoken.text
    assert spoken.level == "main" and spoken.lang == "zh_CN"
    # Said in the order asked, the newest screen last; the guide's utterance was cut short by the touch.
    texts = [s.text for s in said(ui)]
    assert texts.index(spoken.text) > max(i for i, t in enumerate(texts) if zh("Service guide") in t)
    assert speech.wait_idle(30)
    entry = next(s for s in said(ui) if s.text == spoken.text)
    audio = wav(entry.audio)
    assert audio.duration_s > 2.0 and audio.rms_dbfs() > -45  # real speech, at the session's volume


def test_english_screens_are_spoken_in_english(voice: Any) -> None:
    ui = voice
    ui.tap_id("language_button", "home")
    spoken = wait_said(ui, lambda t: "Welcome. Please choose a service." in t, "home spoken in English")
    assert spoken.lang == "en"
    assert "24-hour Self-service Police Station" in spoken.text


def test_a_touch_stops_speech_at_once_and_repeat_says_it_again(voice: Any) -> None:
    ui, speech = voice, voice.app.runtime.speech
    speaker = ui.app.runtime.devices.get("speaker")
    ui.tap_id("voice_button", "home")  # 语音引导: full read-out, and the voice bar on the screens after home
    assert ui.app.voice_full and speech.readout == "full"
    wait_said(ui, lambda t: f"{zh('Voice guidance')}，{zh('button')}，{zh('on')}" in t, "home read out in full")
    start_h01(ui)  # the identify screen: short enough to render at once
    full = wait_said(ui, lambda t: f"{zh('Repeat')}，{zh('button')}" in t and zh("Identity check") in t,
                     "the identify screen read out in full")
    main = next(s for s in said(ui) if zh("Identity check") in s.text and s.level == "main")
    assert full.level == "full"
    ui.wait_until(lambda: sounding(speaker) and main.text in speaker.played[-1].label, "the prompt to sound")
    heard = speaker.played_total  # the list keeps only the newest: a long run fills it
    ui.tap_id("repeat_button")

    def entries(text: str) -> list[Any]:
        return [s for s in said(ui) if s.text == text]

    # The touch stopped the screen's prompt while it sounded and dropped the queued read-out; repeat says it again.
    ui.wait_until(lambda: entries(main.text)[0].audio, "the prompt to stop")
    assert not entries(main.text)[0].completed
    assert wav(entries(main.text)[0].audio).duration_s > 3  # far longer than it was allowed to sound
    ui.wait_until(lambda: sounding(speaker) and speaker.played_total > heard
                  and full.text in speaker.played[-1].label, "the repeat to sound")
    assert len(entries(full.text)) == 2 and not entries(full.text)[0].audio  # dropped before it reached the card
    ui.tap_id("language_button")  # any touch
    ui.wait_until(lambda: entries(full.text)[1].audio, "the repeat to stop")
    assert not entries(full.text)[1].completed
    assert wav(entries(full.text)[1].audio).duration_s > 5
    ui.tap_id("home_button")
    ui.wait_screen("home")


def test_volume_and_rate_buttons_change_the_voice_and_reset_when_the_session_ends(voice: Any) -> None:
    ui, speech = voice, voice.app.runtime.speech
    start = speech.volume_level
    ui.tap_id("voice_button", "home")
    open_guide(ui, "H01")
    ui.tap_id("louder_button")
    ui.tap_id("louder_button")
    assert speech.volume_level == start + 2
    spoken = wait_said(ui, lambda t: t == f"音量第{start + 3}档，共{len(speech.defaults.volume_levels_db)}档",
                       "the new volume said")
    louder = ui.wait_until(lambda: next((s for s in said(ui) if s.text == spoken.text and s.audio), None),
                           "the new volume to reach the card")
    gain = speech.defaults.volume_levels_db[start + 2] - speech.defaults.volume_levels_db[start]
    assert gain >= 12
    quiet = speech.render(Utterance.of(spoken.text, "zh_CN"), rate=speech.defaults.rate_wpm)[0]
    assert wav(louder.audio).rms_dbfs() == pytest.approx(quiet.scaled(speech.defaults.volume_levels_db[start + 2])
                                                         .rms_dbfs(), abs=0.5)
    ui.tap_id("rate_button")
    assert speech.rate == speech.defaults.rate_wpm + 2 * speech.defaults.rate_step_wpm
    fast = ui.wait_until(lambda: next((s for s in said(ui) if s.text == zh("Speech rate: fast") and s.audio), None),
                         "the new rate said")
    normal = speech.render(Utterance.of(fast.text, "zh_CN"), rate=speech.defaults.rate_wpm)[0]
    assert wav(fast.audio).duration_s < normal.duration_s * 0.95  # said faster
    # The visit's end (Home from the guide) returns volume, rate and read-out to the station's defaults.
    ui.tap_id("home_button")
    ui.wait_screen("home")
    assert speech.volume_level == speech.defaults.volume_level
    assert speech.rate == speech.defaults.rate_wpm
    assert speech.readout == speech.defaults.voice and not ui.app.voice_full


def test_personal_data_is_spoken_only_with_private_listening(voice: Any) -> None:
    ui = voice
    app = ui.app
    card = DEMO_CARDS[0]
    start_h01(ui)
    app.runtime.devices.get("id_card").place(card.id_number)
    ui.wait_screen("form")
    ui.tap(app.sm.current_screen.inputs["purpose"].children[-1])  # a one-choice form submits on the touch
    ui.wait_screen("confirm")
    spoken = wait_said(ui, lambda t: zh("Please confirm") in t, "the confirm screen spoken")
    assert zh("Personal details shown on the screen") in spoken.text
    assert card.name not in spoken.text and card.id_number not in spoken.text
    ui.app.runtime.devices.get("speaker").plug_headset(True)  # headphones in: private listening
    ui.tap_id("language_button")
    ui.tap_id("language_button")  # the screen said again, in Chinese
    private = ui.wait_until(lambda: next((s for s in said(ui) if s.private and zh("Please confirm") in s.text), None),
                            "the private read-out")
    assert card.name in private.text and card.id_number in private.text
    assert all(card.id_number not in s.text for s in said(ui) if not s.private)


def test_the_idle_warning_is_spoken(voice: Any) -> None:
    ui = voice
    open_guide(ui, "H01")
    spoken = wait_said(ui, lambda t: zh("Are you still there?") in t, "the idle warning spoken")
    assert zh("I need more time") in spoken.text


def test_the_officers_reply_is_spoken_as_its_banner_shows(voice: Any) -> None:
    from tests.screens.test_help_ui import _answer, _call

    ui = voice
    open_guide(ui, "H01")
    ticket = _call(ui)
    _answer(ui, ticket, "请稍等，民警马上过来。")
    ui.wait_until(lambda: ui.app.root.ids.help_reply.shown, "the reply banner", 20)
    spoken = wait_said(ui, lambda t: "请稍等，民警马上过来。" in t, "the reply spoken")
    assert zh("The duty officer answers") in spoken.text
    ui.tap(ui.app.root.ids.help_ack_button, "I have read it")
    ui.tap_id("home_button")
    ui.wait_screen("home")
