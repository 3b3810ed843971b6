"""The kiosk's own refusals (expired card, card type, face, chip): their rules and resident-facing messages."""
from __future__ import annotations

from kiosk.errors import BacFailed, BackendRefused, CardRemoved, DeviceProtocolError, DeviceTimeout, NoCard


class Refused(BackendRefused):
    """A rule checked at the kiosk refuses the resident (expired card, face mismatch, ...)."""


FACE_TRIES = 3

# Local refusals: rule -> (English msgid, where to go instead). Chinese in workflow.po.
RULES: dict[str, tuple[str, str]] = {
    "id_card_expired": ("Your ID card has expired. Please renew it before using this service.",
                        "Please go to the household registration counter."),
    "document_expired": ("Your document has expired and cannot be used for this service.",
                         "Please go to the exit-entry counter."),
    "card_type_not_accepted": ("This service does not accept this kind of identity document.",
                               "Please use your resident ID card, or go to a counter."),
    "face_mismatch_send_to_counter": ("Your face could not be matched to the ID card.",
                                      "Please go to a staffed counter with your ID card."),
    "liveness_failed": ("The camera could not tell that you are there in person (a photo or a screen is refused).",
                        "Please go to a staffed counter with your ID card."),
    "chip_not_authentic": ("The chip of this document could not be verified as genuine, so it cannot be used "
                           "at the kiosk.",
                           "Please go to the exit-entry counter with this document."),
}

# BacFailed: the MRZ was misread or mistyped; the resident can scan or type it again.
_RETRYABLE_READ = (NoCard, CardRemoved, DeviceTimeout, DeviceProtocolError, BacFailed)


def refusal(rule: str) -> Refused:
    """The local refusal for ``rule``, with its resident-facing messages."""
    from kiosk.i18n import translate

    message_en, where_en = RULES[rule]
    return Refused(rule, message_en=message_en, where_en=where_en,
                   message_zh=translate(message_en, "zh_CN"), where_zh=translate(where_en, "zh_CN"))

