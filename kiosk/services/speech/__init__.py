"""Voice guidance: text to speech (espeak-ng), the prompt cache and the speech service screens call."""
from kiosk.services.speech.engine import EspeakEngine, PromptCache, SpeechUnavailable
from kiosk.services.speech.prompts import fixed_prompts, personal, step
from kiosk.services.speech.service import Defaults, SpeechService, Spoken
from kiosk.services.speech.utterance import Personal, Spell, Utterance, compose

__all__ = ["Defaults", "EspeakEngine", "Personal", "PromptCache", "SpeechService", "SpeechUnavailable", "Spell",
           "Spoken", "Utterance", "compose", "fixed_prompts", "personal", "step"]
