"""The kiosk's own refusals (card type, expired card, face, chip): the checks and their resident-facing messages."""
from __future__ import annotations

import datetime as dt
import logging

from kiosk.errors import BacFailed, BackendRefused, CardRemoved, DeviceProtocolError, DeviceTimeout, NoCard
from kiosk.hardware.idcard import IdentityCard
from kiosk.services.catalog import CatalogItem

log = logging.getLogger(__name__)


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

# Card reads the resident can try again, the step left open. BacFailed: the MRZ was misread
# or mistyped; the resident can scan or type it again.
RETRYABLE_READS = (NoCard, CardRemoved, DeviceTimeout, DeviceProtocolError, BacFailed)


def refusal(rule: str) -> Refused:
    """The local refusal for ``rule``, with its resident-facing messages."""
    from kiosk.i18n import translate

    message_en, where_en = RULES[rule]
    return Refused(rule, message_en=message_en, where_en=where_en,
                   message_zh=translate(message_en, "zh_CN"), where_zh=translate(where_en, "zh_CN"))


def check_card(item: CatalogItem, card: IdentityCard, today: dt.date) -> None:
    """The item's card rules (catalog ``accepted_cards``, ``accepts_expired_card``). Raises Refused."""
    if card.card_type not in item.accepted_cards:
        raise refusal("card_type_not_accepted")
    if card.valid_to and card.valid_to != "long-term":
        try:
            expiry: dt.date | None = dt.date.fromisoformat(card.valid_to)
        except ValueError:
            expiry = None
        if (expiry is None or expiry < today) and not item.accepts_expired_card:
            raise refusal("id_card_expired" if card.card_type == "resident" else "document_expired")


def check_chip(card: IdentityCard, access: tuple[str, str, str], *, production: bool) -> None:
    """A travel document's chip must prove itself. Raises Refused (chip_not_authentic).

    Passive authentication must have found EF.SOD and every data group's hash in it, the
    chip's DG1 must hold the document number and dates that opened it (a chip programmed
    to open with another document's keys holds someone else's data), and a CSCA chain
    that was checked must hold: in the production profile it must have been checked.
    """
    def normalise(number: str) -> str:
        return number.strip().upper().replace(" ", "").rstrip("<")

    extra = card.extra
    why = ""
    if extra.get("sod_present") != "true":
        why = "no EF.SOD"
    elif extra.get("hashes_valid") != "true":
        why = "a data group does not match its hash in EF.SOD"
    elif extra.get("chain_valid") == "false" or (production and extra.get("chain_valid") != "true"):
        why = "EF.SOD is not signed under a trusted CSCA"
    else:
        number, birth, expiry = access
        dg1 = (extra.get("dg1_document_number", ""), extra.get("dg1_birth_date", ""),
               extra.get("dg1_expiry_date", ""))
        if not dg1[0] or normalise(dg1[0]) != normalise(number) or (dg1[1], dg1[2]) != (birth.strip(),
                                                                                          expiry.strip()):
            why = "DG1 is not the document whose MRZ opened the chip"
    if why:
        log.warning("travel document chip refused: %s", why)
        raise refusal("chip_not_authentic")
