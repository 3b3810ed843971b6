"""Error hierarchy: one root, a stable code per failure, a translated message per code.

Every error the resident or the technician can meet derives from :class:`KioskError`.
The ``code`` is stable (logs, journal, CLI JSON, summary.json); ``message_en`` is the
gettext msgid, translated to Chinese through the catalogs in ``kiosk/locale``;
``exit_status`` is what the CLI returns. Cancelling is not an error and has no class here.
"""
from __future__ import annotations

from typing import Any


class KioskError(Exception):
    """Root of every kiosk failure; carries a stable code and a resident-readable message."""

    code: str = "kiosk_error"
    message_en: str = "Something went wrong. Please try again or ask the staff for help."
    exit_status: int = 1

    def __init__(self, detail: str = "", *, message_en: str | None = None, **context: Any) -> None:
        super().__init__(detail or (message_en or self.message_en))
        self.detail = detail
        if message_en is not None:
            self.message_en = message_en
        self.context = context

    def message(self, lang: str = "zh_CN") -> str:
        """The resident-facing message in ``lang`` (zh_CN or en)."""
        from kiosk.i18n import translate

        return translate(self.message_en, lang)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """JSON-friendly form used by the CLI and summary files (no personal data)."""
        return {"code": self.code, "message": self.message(lang), "detail": self.detail}


# --- configuration and catalog -------------------------------------------------------
class ConfigError(KioskError):
    """The configuration file is missing, malformed or names a bad value."""

    code = "config_invalid"
    message_en = "The terminal is not configured correctly. Please ask the staff for help."
    exit_status = 78  # EX_CONFIG

    def __init__(self, detail: str, *, key: str = "", value: Any = None) -> None:
        super().__init__(detail, key=key, value=value)
        self.key = key
        self.value = value


class CatalogError(KioskError):
    """The item catalog failed validation at load."""

    code = "catalog_invalid"
    message_en = "The list of services could not be loaded. Please ask the staff for help."
    exit_status = 78


class UnknownItemError(KioskError):
    """An item id that the catalog does not hold."""

    code = "unknown_item"
    message_en = "This service is not offered at this terminal."
    exit_status = 2


class FieldError(KioskError):
    """A form value failed its validation rule."""

    code = "field_invalid"
    message_en = "Please check the highlighted entry."
    exit_status = 2

    def __init__(self, field: str, detail: str, *, message_en: str | None = None) -> None:
        super().__init__(detail, message_en=message_en, field=field)
        self.field = field


# --- backend ---------------------------------------------------------------------------
class BackendError(KioskError):
    """Root of failures talking to the e-Jingtong backend."""

    code = "backend_error"
    message_en = "The police service system cannot be reached right now. Please try again later."
    exit_status = 69  # EX_UNAVAILABLE


class BackendUnavailable(BackendError):
    """The backend refused the connection or is down."""

    code = "backend_unavailable"


class BackendTimeout(BackendError):
    """The backend did not answer within the configured time."""

    code = "backend_timeout"
    message_en = "The police service system is responding slowly. Please try again in a moment."


class BackendServerError(BackendError):
    """The backend answered with a 5xx status."""

    code = "backend_server_error"


class BackendProtocolError(BackendError):
    """The backend answered something that is not the documented API (garbage, wrong shape)."""

    code = "backend_bad_response"
    message_en = "The police service system gave an unexpected answer. Please try again later."


class SignatureError(BackendError):
    """A response or document signature did not verify (tampered or replayed)."""

    code = "signature_invalid"
    message_en = "A security check failed, so this request was stopped. Please ask the staff for help."


class BackendRejected(BackendError):
    """The backend rejected the request itself (authentication, replay, schema)."""

    code = "backend_rejected"
    message_en = "The request was not accepted by the police service system. Please ask the staff for help."


class OutcomeUnknown(BackendError):
    """The backend never confirmed whether an operation happened before the deadline.

    Nothing is assumed: the journal keeps the operation open, and recovery or the
    background reconciler asks the backend what became of it, then prints what was issued
    or refunds what was paid. ``reference`` is the number the resident shows at the counter.
    """

    code = "outcome_unknown"
    message_en = "The police service system did not confirm your request in time. Your reference number is {reference}."
    where_en = ("The service counter, with this number: your slip is printed as soon as the outcome is known and "
                "kept for you there. If the service did not go through, any fee you paid is refunded automatically.")

    def __init__(self, detail: str = "", *, reference: str = "") -> None:
        super().__init__(detail, reference=reference)
        self.reference = reference

    @property
    def where_zh(self) -> str:
        """Where to collect the slip, in Chinese."""
        from kiosk.i18n import translate

        return translate(self.where_en, "zh_CN")

    def message(self, lang: str = "zh_CN") -> str:
        """The message with the reference number filled in."""
        return super().message(lang).replace("{reference}", self.reference)


class BackendRefused(KioskError):
    """A business rule refuses the request; ``rule`` names it, ``where`` says where to go."""

    code = "refused"
    message_en = "This service cannot be completed at the kiosk."
    exit_status = 3

    def __init__(self, rule: str, detail: str = "", *, message_zh: str = "", message_en: str = "",
                 where_zh: str = "", where_en: str = "") -> None:
        super().__init__(detail or rule, message_en=message_en or None, rule=rule)
        self.rule = rule
        self.message_zh = message_zh
        self.where_zh = where_zh
        self.where_en = where_en

    def message(self, lang: str = "zh_CN") -> str:
        """The backend's own wording when it gave one, else the catalog's."""
        if lang.startswith("zh") and self.message_zh:
            return self.message_zh
        return super().message(lang)


class PaymentError(KioskError):
    """A payment could not be completed; nothing was charged unless the journal says so."""

    code = "payment_failed"
    message_en = "The payment did not go through. You have not been charged."


class PaymentTimeout(PaymentError):
    """The resident did not pay before the order expired."""

    code = "payment_timeout"
    message_en = "The payment time ran out. You have not been charged."


# --- devices ---------------------------------------------------------------------------
class DeviceError(KioskError):
    """Root of device failures; ``device`` names the configured device."""

    code = "device_error"
    message_en = "A device in this terminal is not working. Please ask the staff for help."
    exit_status = 74  # EX_IOERR

    def __init__(self, detail: str = "", *, device: str = "", message_en: str | None = None) -> None:
        super().__init__(detail, message_en=message_en, device=device)
        self.device = device


class NoDevice(DeviceError):
    """The configured device is not present (production never falls back to a simulator)."""

    code = "no_device"


class DeviceOffline(DeviceError):
    """The device does not answer."""

    code = "device_offline"


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""

    code = "device_timeout"
    message_en = "The device did not respond in time. Please try again."


class DeviceProtocolError(DeviceError):
    """The device sent bytes that do not decode (garbage, bad checksum, truncated frame)."""

    code = "device_bad_data"
    message_en = "The device sent data that could not be read. Please try again."


class DeviceOverrun(DeviceProtocolError):
    """The device kept sending past a reader's bound (bytes or seconds) and was cut off."""

    code = "device_overrun"


class NoCard(DeviceError):
    """No card in the reader's field."""

    code = "no_card"
    message_en = "No card was found. Please place your ID card on the reader."


class CardRemoved(DeviceError):
    """The card left the field during a read."""

    code = "card_removed"
    message_en = "The card was moved during reading. Please place it on the reader again and keep it still."


class SamError(DeviceError):
    """The ID card SAM module answered with a failure status; ``sw3`` is its status byte."""

    code = "sam_error"
    message_en = "The ID card could not be read. Please place it on the reader again."

    def __init__(self, detail: str = "", *, sw3: int = 0, device: str = "") -> None:
        super().__init__(detail, device=device)
        self.sw3 = sw3
        self.context["sw3"] = sw3


class SamRejected(SamError):
    """The SAM refused a command frame (checksum, length, command, permission)."""

    code = "sam_rejected"


class SamNotReady(SamError):
    """The SAM failed its self-check or is not authorised for use."""

    code = "sam_not_ready"
    message_en = "The ID card reader is not working. Please ask the staff for help."


class CardAuthFailed(SamError):
    """Mutual authentication between the SAM and the card failed (card may be forged or damaged)."""

    code = "card_auth_failed"
    message_en = "This ID card could not be verified. Please ask the staff for help."


class UnknownCardType(SamError):
    """The card in the field is not an identity card the SAM knows."""

    code = "unknown_card_type"
    message_en = "This card is not a supported ID card. Please place your resident ID card on the reader."


class CardReadFailed(SamError):
    """Reading the card failed after it was selected."""

    code = "card_read_failed"


class CardNoContent(SamError):
    """The card holds no content for the requested item (e.g. no appended address)."""

    code = "card_no_content"


class MrzUnreadable(DeviceProtocolError):
    """What the scanner read off the data page is not a whole MRZ, or its check digits disagree."""

    code = "mrz_unreadable"
    message_en = ("The photo page could not be read. Place the document flat on the reader again, "
                  "or type its details.")


class BacFailed(DeviceError):
    """Basic access control failed: the MRZ data does not match the chip."""

    code = "bac_failed"
    message_en = "The document chip could not be opened. Please check the document number and dates."


class PaperOut(DeviceError):
    """The printer ran out of paper."""

    code = "paper_out"
    message_en = "The printer is out of paper. Your document is saved: read the same ID card again later to reprint it."


class CoverOpen(DeviceError):
    """The printer cover is open."""

    code = "cover_open"
    message_en = "The printer cover is open. Your document is saved: read the same ID card again later to reprint it."


class PrintFailed(DeviceError):
    """A print job failed for another reason (rejected, jammed, offline mid-job)."""

    code = "print_failed"
    message_en = "Printing failed. Your document is saved: read the same ID card again later to reprint it."
