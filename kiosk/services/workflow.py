"""The workflow engine: one resident's transaction as a declared state machine.

Every item runs through the same steps, identify → face → form → confirm → pay → produce
→ done, and its kind chooses which of them it visits. As in Electrum's wizard navmap,
each kind declares, for each step, where it goes ``next`` — here a tuple of candidate
steps of which the first that applies to the collected data is taken (face only for
id_card_and_face items, form only when the item has fields, pay only when there is an
amount) — and which step is ``last``. The screens call one method per step; nothing here
knows of Kivy.

Every side effect (the backend operation, payment order create/cancel/refund, the
payment arriving, each print job) is journaled before and after it happens, keyed by its
idempotency key, so :func:`recover` can resume or compensate after a crash: never charge
twice, never lose an issued document. A printer failure leaves the document issued and
journaled; reading the same ID card again offers it for reprint
(:meth:`WorkflowEngine.pending_reprints`, :meth:`Transaction.reprint`).

An operation whose answer is lost is never taken for failed: it is asked again under its
key until ``backend.unknown_outcome_s``, then the transaction ends ``failed`` with reason
``outcome_unknown`` and the resident gets a reference number; the journal keeps the
operation open until recovery (or the running kiosk's reconciler) learns from the backend
what became of it, prints the slip of what was issued, or refunds what was paid when the
backend confirms the operation did not happen. A refund is asked for on no other grounds.

Personal data lives only in the transaction's :class:`~kiosk.services.session.Session`.
"""
from __future__ import annotations

import datetime as dt
import enum
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from kiosk import localtime
from kiosk.errors import (BacFailed, BackendError, BackendRefused, BackendRejected, CardRemoved, DeviceError,
                          DeviceProtocolError, DeviceTimeout, FieldError, KioskError, MrzUnreadable, NoCard,
                          NoDevice, OutcomeUnknown, PaymentTimeout)
from kiosk.hardware.idcard import IdentityCard
from kiosk.services import journal as J
from kiosk.services.session import EndReason, Session, load_resume, shred, wipe_leftovers

if TYPE_CHECKING:
    from kiosk.services.face.step import FaceOutcome

log = logging.getLogger(__name__)


class Step(str, enum.Enum):
    """The steps a transaction can visit, in order."""

    IDENTIFY = "identify"
    FACE = "face"
    FORM = "form"
    CONFIRM = "confirm"
    PAY = "pay"
    PRODUCE = "produce"
    DONE = "done"


class Outcome(str, enum.Enum):
    """How a transaction ended."""

    COMPLETED = "completed"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    FAILED = "failed"


# --- errors ---------------------------------------------------------------------------
class Refused(BackendRefused):
    """A rule checked at the kiosk refuses the resident (expired card, face mismatch, ...)."""


class StepError(KioskError):
    """A step method was called out of order (a screen bug, not the resident's)."""

    code = "wrong_step"


class TransactionClosed(StepError):
    """The transaction already ended."""

    code = "transaction_closed"


FACE_TRIES = 3
LATE_PAYMENT_WINDOW_S = 2 * 24 * 3600  # how long recovery keeps reconciling an order nothing was produced for

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


# What an operator must learn of, every time (metrics and alert rules count them).
PAID_UNDELIVERED = "paid_undelivered"  # paid, and the service could not be delivered (yet)
REFUND_FAILED = "refund_failed"  # a refund the backend owed the resident did not go through
ALARM_KINDS = (PAID_UNDELIVERED, REFUND_FAILED)
UNKNOWN = "unknown"  # journal ref ``outcome`` of an operation the backend never confirmed


def kiosk_reference(terminal_id: str, txn_id: str) -> str:
    """The number a resident is given when an outcome is unknown: terminal and transaction, nothing personal."""
    return f"{terminal_id}-{txn_id[:8].upper()}"


def refusal(rule: str) -> Refused:
    """The local refusal for ``rule``, with its resident-facing messages."""
    from kiosk.i18n import translate

    message_en, where_en = RULES[rule]
    return Refused(rule, message_en=message_en, where_en=where_en,
                   message_zh=translate(message_en, "zh_CN"), where_zh=translate(where_en, "zh_CN"))


# --- the navmap ----------------------------------------------------------------------
@dataclass(frozen=True)
class StepSpec:
    """One step of a kind's path: candidates for ``next`` (first that applies wins) and ``last``."""

    next: tuple[Step, ...] = ()
    last: bool = False


@dataclass(frozen=True)
class KindPath:
    """A kind's path: where it starts and each step's spec."""

    start: tuple[Step, ...]
    steps: Mapping[Step, StepSpec]


S = Step
_PRODUCE_LAST = StepSpec(last=True)

# Kinds that confirm before acting (something is submitted, issued or paid).
_CONFIRMING = KindPath(
    start=(S.IDENTIFY, S.FACE, S.FORM, S.CONFIRM),
    steps={
        S.IDENTIFY: StepSpec((S.FACE, S.FORM, S.CONFIRM)),
        S.FACE: StepSpec((S.FORM, S.CONFIRM)),
        S.FORM: StepSpec((S.CONFIRM,)),
        S.CONFIRM: StepSpec((S.PAY, S.PRODUCE)),
        S.PAY: StepSpec((S.PRODUCE,)),
        S.PRODUCE: _PRODUCE_LAST,
    })
# Queries look up and show: nothing to confirm, nothing to pay.
_QUERY = KindPath(
    start=(S.IDENTIFY, S.FACE, S.FORM, S.PRODUCE),
    steps={
        S.IDENTIFY: StepSpec((S.FACE, S.FORM, S.PRODUCE)),
        S.FACE: StepSpec((S.FORM, S.PRODUCE)),
        S.FORM: StepSpec((S.PRODUCE,)),
        S.PRODUCE: _PRODUCE_LAST,
    })
# Guides and verification: no identity, no payment.
_ANONYMOUS = KindPath(
    start=(S.FORM, S.PRODUCE),
    steps={S.FORM: StepSpec((S.PRODUCE,)), S.PRODUCE: _PRODUCE_LAST})

NAVMAP: dict[str, KindPath] = {
    "certificate": _CONFIRMING,
    "application": _CONFIRMING,
    "appointment": _CONFIRMING,
    "report": _CONFIRMING,
    "payment": _CONFIRMING,
    "query": _QUERY,
    "guide": _ANONYMOUS,
    "verify": _ANONYMOUS,
}


def _applies(step: Step, txn: "Transaction") -> bool:
    item = txn.item
    if step is S.IDENTIFY:
        return item.needs_identity
    if step is S.FACE:
        return item.identity == "id_card_and_face"
    if step is S.FORM:
        return bool(item.fields)
    if step is S.PAY:
        return txn.amount_fen > 0
    return True


def _first(candidates: Iterable[Step], txn: "Transaction") -> Step:
    for step in candidates:
        if _applies(step, txn):
            return step
    return S.DONE


# --- records crossing to the screens --------------------------------------------------
@dataclass(frozen=True)
class Produced:
    """What a transaction produced: PDFs (in the session folder), receipt bytes, lines to show.

    ``undelivered`` lists the print jobs that failed (their error codes); the documents
    stay issued and journaled for reprint when the same ID card is read again.
    """

    documents: tuple[Path, ...] = ()
    receipts: tuple[bytes, ...] = ()
    display: tuple[Mapping[str, str], ...] = ()
    reference: str = ""
    verification_codes: tuple[str, ...] = ()
    undelivered: tuple[str, ...] = ()
    slip_offered: bool = False  # a query's slip: printed by Transaction.print_slip when the resident asks


@dataclass(frozen=True)
class PendingReprint:
    """A document or receipt issued to this card's holder but never printed."""

    key: str
    item_id: str
    kind: str  # print_a4 or print_receipt
    document_id: str = ""
    reference: str = ""
    verification_code: str = ""


@dataclass(frozen=True)
class TransactionEnded:
    """Handed to ``WorkflowEngine.on_end`` listeners once per transaction, when its outcome is set.

    No personal data: the item, the outcome, how long it took and, for the satisfaction
    rating item (catalog ``rating``), the chosen rating and the item id it rates.
    """

    item_id: str
    outcome: str
    reason: str
    duration_s: float
    rating: str = ""
    rated_item: str = ""


@dataclass(frozen=True)
class MoneyAlarm:
    """Handed to ``WorkflowEngine.on_alarm`` listeners: a paid service not delivered, or a refund that failed."""

    kind: str  # one of ALARM_KINDS
    item_id: str
    txn_id: str
    reference: str  # kiosk_reference: what the resident holds; no personal data


@dataclass(frozen=True)
class FaceResult:
    """One face-check attempt: matched or not, how many tries are left, and why it missed."""

    matched: bool
    score: float
    tries_left: int
    reason: str = ""  # "" when matched; "face_mismatch" or "liveness_failed"


def _fen(fee_cny: float | None) -> int:
    return int(round((fee_cny or 0) * 100))


def _today() -> dt.date:
    return localtime.today()  # the station's day, as the backend counts it


def _receipt_kind(item: Any) -> str:
    return {"payment": "payment", "appointment": "appointment"}.get(item.kind, "transaction")


# --- the transaction -----------------------------------------------------------------
class Transaction:
    """One resident doing one item. Screens call one method per step.

    After any exception other than FieldError and a retryable card read (NoCard,
    CardRemoved, DeviceTimeout, DeviceProtocolError), ``outcome`` is set; what was
    issued or paid is kept in the journal.
    """

    def __init__(self, engine: "WorkflowEngine", item: Any, session: Session) -> None:
        self.engine = engine
        self.item = item
        self.session = session
        self.id = secrets.token_hex(12)
        self.amount_fen = _fen(item.fee_cny)
        self.outcome: Outcome | None = None
        self.reason = ""
        self.error: KioskError | None = None
        self.order: dict[str, Any] | None = None
        self.produced: Produced | None = None
        self._slip: bytes | None = None  # the query slip printed on request
        self.face_tries = 0
        self.pending_reprints: tuple[PendingReprint, ...] = ()
        self.history: list[Step] = []
        self._id_hash = ""
        self._pay_deadline = 0.0
        self._paid = False
        self._lock = threading.RLock()
        self._started_at = engine.clock()
        self._ended_reported = False
        self.step: Step = _first(self.path_spec.start, self)

    # --- navigation ------------------------------------------------------------------
    @property
    def path_spec(self) -> KindPath:
        """This item's path, from the navmap of its kind."""
        return NAVMAP[self.item.kind]

    def planned_path(self) -> list[Step]:
        """The steps this transaction will visit from now on, given what it knows so far."""
        steps, step = [], self.step
        while step is not S.DONE and len(steps) < 10:
            steps.append(step)
            spec = self.path_spec.steps[step]
            step = S.DONE if spec.last else _first(spec.next, self)
        return steps

    def _advance(self) -> Step:
        spec = self.path_spec.steps[self.step]
        self.history.append(self.step)
        self.step = S.DONE if spec.last else _first(spec.next, self)
        if self.step is S.DONE and self.outcome is None:
            self.outcome = Outcome.COMPLETED
            self.engine._ended(self)
        return self.step

    def _expect(self, step: Step) -> None:
        if self.outcome is not None:
            raise TransactionClosed(f"transaction already {self.outcome.value}")
        if self.step is not step:
            raise StepError(f"expected step {self.step.value}, called {step.value}")

    def _end(self, outcome: Outcome, reason: str, error: KioskError | None = None) -> None:
        self.outcome = outcome
        self.reason = reason
        self.error = error
        self.step = S.DONE
        log.info("txn=%s item=%s outcome=%s reason=%s", self.id, self.item.id, outcome.value, reason)
        self.engine._ended(self)

    def _fail(self, err: KioskError) -> None:
        if isinstance(err, BackendRefused):
            self._end(Outcome.REFUSED, err.rule, err)
        else:
            self._end(Outcome.FAILED, err.code, err)

    def _key(self, kind: str, n: int = 0) -> str:
        return f"{self.id}-{kind}-{n}"

    @property
    def journal(self) -> J.Journal:
        return self.engine.journal

    # --- identify --------------------------------------------------------------------
    def identify(self, card: IdentityCard | None = None,
                 access: tuple[str, str, str] | None = None) -> list[PendingReprint]:
        """Read (or take) the identity document and apply the kiosk's rules.

        ``access``: a travel document's number, birth and expiry date as the resident typed
        them (when the scanner cannot read the data page); checked first, FieldError names
        the entry. Returns documents owed to this card's holder (offer a reprint). Raises
        NoCard, CardRemoved, DeviceTimeout, DeviceProtocolError or BacFailed with the step
        unchanged (try again); Refused (outcome refused) for an expired or unaccepted card.
        """
        with self._lock:
            self._expect(S.IDENTIFY)
            if access is not None:
                from kiosk.hardware.icao.mrz import keyed_access_data

                access = keyed_access_data(*access)  # a FieldError leaves the step open
            if card is None:
                try:
                    card = self.engine.read_card(self.item, access)
                except _RETRYABLE_READ:
                    raise
                except KioskError as err:
                    self._fail(err)
                    raise
            try:
                self.engine.check_card(self.item, card)
            except Refused as err:
                self._fail(err)
                raise
            self.session.set_identity(card)
            self._id_hash = self.journal.id_hash(card.id_number)
            self.pending_reprints = tuple(self.engine.pending_reprints(card))
            self._advance()
            return list(self.pending_reprints)

    def scan_access(self, timeout: float = 1.0) -> tuple[str, str, str] | None:
        """BAC access data from a travel document's data page under the scanner, None when none came.

        For the identify screen to ask again and again without blocking the resident (who
        can type the details instead); hand the result to :meth:`identify`. Raises
        DeviceProtocolError (what was scanned is not an MRZ) or another DeviceError.
        """
        from kiosk.hardware.icao.mrz import parse_mrz

        self._expect(S.IDENTIFY)
        scanner = self.engine.devices.scanner
        if scanner is None:
            raise NoDevice("no scanner is configured", device="scanner")
        try:
            text = scanner.scan(timeout)
        except DeviceTimeout:
            return None
        try:
            mrz = parse_mrz(text)
        except DeviceProtocolError as exc:
            raise MrzUnreadable(exc.detail, device="scanner") from None
        if not mrz.checks_ok:
            raise MrzUnreadable("MRZ check digits do not match (misread)", device="scanner")
        number, birth, expiry = mrz.access_data()
        return number.rstrip("<"), birth, expiry

    def face_check(self, image: bytes | None = None) -> FaceResult:
        """Match a live photo (None captures one from the camera) with the card holder.

        Three failed tries refuse with face_mismatch_send_to_counter.
        """
        with self._lock:
            self._expect(S.FACE)
            try:
                if image is None:
                    image = self.engine.devices.camera.capture()
                self.session.keep_face_image(image)
                answer = self.engine.backend.compare_face(self.session.id_number, image)
            except _RETRYABLE_READ:
                raise
            except KioskError as err:
                self._fail(err)
                raise
            self.face_tries += 1
            matched = bool(answer.get("match"))
            score = float(answer.get("score", 0.0))
            left = max(0, FACE_TRIES - self.face_tries)
            if matched:
                self._advance()
            elif left == 0:
                err = refusal("face_mismatch_send_to_counter")
                self._fail(err)
                raise err
            return FaceResult(matched, score, 0 if matched else left, "" if matched else "face_mismatch")

    def face_attempt(self, outcome: "FaceOutcome") -> FaceResult:
        """Hand on how the live face step ended: a capture goes to :meth:`face_check`, a failed liveness check
        counts as a try with nothing sent to the backend.

        The third failed try (of either kind) refuses with that try's rule: ``liveness_failed``
        or ``face_mismatch_send_to_counter``. Raises ValueError for a step that ended otherwise.
        """
        from kiosk.services.face.step import LIVENESS_FAILED

        if outcome.captured:
            return self.face_check(outcome.image)
        if outcome.status != LIVENESS_FAILED:
            raise ValueError(f"face step ended {outcome.status!r}: nothing to hand on")
        with self._lock:
            self._expect(S.FACE)
            self.face_tries += 1
            left = max(0, FACE_TRIES - self.face_tries)
            log.info("txn=%s face try %d: liveness failed", self.id, self.face_tries)
            if left == 0:
                err = refusal("liveness_failed")
                self._fail(err)
                raise err
            return FaceResult(False, 0.0, left, "liveness_failed")

    # --- form ------------------------------------------------------------------------
    def field(self, name: str) -> Any:
        """The item's FieldSpec called ``name``. Raises FieldError."""
        for spec in self.item.fields:
            if spec.name == name:
                return spec
        raise FieldError(name, f"item {self.item.id} has no field {name}")

    def options(self, field_name: str, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The choices of a lookup field, from the backend (e.g. this resident's unpaid fines).

        ``values`` are the form's entries so far, for lookups that depend on an earlier choice.
        """
        with self._lock:
            if self.outcome is not None:
                raise TransactionClosed(f"transaction already {self.outcome.value}")
            spec = self.field(field_name)
            if spec.type != "lookup":
                return [{"value": c.value, "label_zh": c.label_zh, "label_en": c.label_en} for c in spec.choices]
            try:
                known = {k: str(v) for k, v in (values or self.form_values).items()
                         if v not in (None, "") and not k.startswith("_")}
                answer = self.engine.backend.lookup(spec.source, self.item.id, self.session.id_number or None,
                                                    known)
            except KioskError as err:
                self._fail(err)
                raise
            opts = list(answer.get("options", []) if isinstance(answer, Mapping) else answer)
            self.session.fields.setdefault("_options", {})[field_name] = opts
            return opts

    def submit_form(self, values: Mapping[str, Any]) -> Step:
        """Validate and keep the form values; raises FieldError (step unchanged) on the first bad one."""
        with self._lock:
            self._expect(S.FORM)
            unknown = sorted(set(values) - {s.name for s in self.item.fields})
            if unknown:
                raise FieldError(unknown[0], f"item {self.item.id} has no field {unknown[0]}")
            clean: dict[str, Any] = {}
            for spec in self.item.fields:
                value = spec.validate(values.get(spec.name))
                if value == "":
                    continue  # an optional field left empty
                if spec.type == "lookup":
                    self._option(spec.name, value)  # must be one the backend offered
                clean[spec.name] = value
            options = self.session.fields.get("_options", {})
            amount = self.item.amount_fen(clean, options)
            self.session.fields = {**clean, "_options": options}
            self.amount_fen = int(amount or 0)
            self._advance()
            return self.step

    def _option(self, name: str, value: Any) -> dict[str, Any]:
        opts = self.session.fields.get("_options", {}).get(name)
        if opts is None:
            opts = self.options(name)
        for opt in opts:
            if str(opt.get("value")) == str(value):
                return opt
        raise FieldError(name, f"{name}: not one of the offered choices",
                         message_en="Please choose one of the offered entries.")

    @property
    def form_values(self) -> dict[str, Any]:
        """The validated form values (no lookup caches)."""
        return {k: v for k, v in self.session.fields.items() if not k.startswith("_")}

    # --- confirm ---------------------------------------------------------------------
    def summary(self) -> list[tuple[str, str, str]]:
        """What the confirm screen shows: (label_zh, label_en, value) rows, fee last."""
        rows = [("业务", "Service", f"{self.item.name_zh} / {self.item.name_en}")]
        values = self.form_values
        for spec in self.item.fields:
            if spec.name in values:
                value = str(values[spec.name])
                if spec.type == "choice":
                    value = f"{spec.choice_label(value, 'zh_CN')} / {spec.choice_label(value, 'en')}"
                elif spec.type == "lookup":
                    opt = next((o for o in self.session.fields.get("_options", {}).get(spec.name, ())
                                if str(o.get("value")) == value), None)
                    if opt:
                        value = f"{opt.get('label_zh', value)} / {opt.get('label_en', value)}"
                rows.append((spec.label_zh, spec.label_en, value))
        if self.amount_fen:
            rows.append(("费用", "Fee", f"¥{self.amount_fen / 100:.2f}"))
        return rows

    def confirm(self) -> Step:
        """The resident confirms; the next step pays or produces."""
        with self._lock:
            self._expect(S.CONFIRM)
            self._save_resume()
            self._advance()
            return self.step

    def _save_resume(self, **extra: Any) -> None:
        # Only what a crashed process needs to finish the effect; wiped with the session.
        card = self.session.identity
        self.session.save_resume({
            "txn_id": self.id, "item_id": self.item.id,
            "id_number": card.id_number if card else "", "card_type": card.card_type if card else "",
            "fields": self.form_values, "amount_fen": self.amount_fen,
            "order_id": (self.order or {}).get("order_id", ""), **extra})

    # --- pay -------------------------------------------------------------------------
    def start_payment(self) -> dict[str, Any]:
        """Create the QR payment order (journaled); returns the Order with its qr_payload."""
        with self._lock:
            self._expect(S.PAY)
            if self.order is not None and self.order.get("status") == "pending":
                return self.order
            key = self._key(J.PAY_CREATE, len([e for e in self.journal.entries(self.id)
                                               if e.kind == J.PAY_CREATE]))
            refs = {"amount_fen": self.amount_fen, "reference": self.id,
                    "description": self.item.name_en, "session": self.session.id}
            self.journal.begin(key, self.id, self.item.id, S.PAY.value, J.PAY_CREATE,
                               id_hash=self._id_hash, refs=refs)
            try:
                order = self.engine.backend.create_order(
                    item_id=self.item.id, amount_fen=self.amount_fen, reference=self.id,
                    description=self.item.name_en, idempotency_key=key)
            except KioskError as err:
                # A refusal or rejection means no order exists; after timeouts recovery settles it.
                if isinstance(err, (BackendRefused, BackendRejected)):
                    self.journal.fail(key, err.code)
                self._fail(err)
                raise
            self.journal.complete(key, {"order_id": order["order_id"], "order_status": order["status"]})
            self.order = order
            self._pay_deadline = self.engine.clock() + self.engine.payment_timeout_s
            self._save_resume()
            return order

    def poll_payment(self) -> dict[str, Any]:
        """Ask the backend about the order; paid moves on to produce; past the timeout it is cancelled."""
        with self._lock:
            self._expect(S.PAY)
            if self.order is None:
                raise StepError("no payment order yet: call start_payment first")
            try:
                order = self.engine.backend.get_order(self.order["order_id"])
            except BackendError as err:
                # A slow poll is not a failed payment; the order is still open.
                log.warning("txn=%s poll failed: %s", self.id, err.code)
                order = dict(self.order)
            self.order = order
            if order["status"] == "paid":
                self._mark_paid(order)
            elif order["status"] in ("cancelled", "expired"):
                err = PaymentTimeout(f"order {order['status']}")
                self._end(Outcome.FAILED, err.code, err)
            elif self.engine.clock() > self._pay_deadline:
                order = self._cancel_order(timeout=True)
            return order

    def _mark_paid(self, order: Mapping[str, Any]) -> None:
        if not self._paid:
            self._paid = True
            self.journal.record(self._key(J.PAY_PAID), self.id, self.item.id, S.PAY.value, J.PAY_PAID,
                                id_hash=self._id_hash,
                                refs={"order_id": order["order_id"], "amount_fen": order.get("amount_fen", 0),
                                      "session": self.session.id})
        if self.step is S.PAY:
            self._advance()

    def cancel_payment(self) -> dict[str, Any] | None:
        """Cancel the open order; when it turns out paid already, move on to produce instead."""
        with self._lock:
            self._expect(S.PAY)
            if self.order is None:
                self._end(Outcome.CANCELLED, "cancelled")
                return None
            return self._cancel_order(timeout=False)

    def _cancel_order(self, *, timeout: bool) -> dict[str, Any]:
        assert self.order is not None
        order_id = self.order["order_id"]
        key = self._key(J.PAY_CANCEL)
        self.journal.begin(key, self.id, self.item.id, S.PAY.value, J.PAY_CANCEL, id_hash=self._id_hash,
                           refs={"order_id": order_id, "session": self.session.id})
        try:
            order = self.engine.backend.cancel_order(order_id, idempotency_key=key)
        except KioskError as err:
            self.journal.fail(key, err.code)
            # The order may still be paid later: recovery's reconcile settles it.
            self._fail(err)
            raise
        self.order = order
        if order["status"] == "paid":  # paid between the last poll and the cancel
            self.journal.fail(key, "already_paid", {"order_status": "paid"})
            self._mark_paid(order)
            return order
        self.journal.complete(key, {"order_status": order["status"]})
        if timeout:
            err = PaymentTimeout(f"order {order_id} not paid in time")
            self._end(Outcome.FAILED, err.code, err)
        else:
            self._end(Outcome.CANCELLED, "cancelled")
        return order

    # --- produce ---------------------------------------------------------------------
    def produce(self) -> Produced:
        """Run the item's operation (journaled), then print its documents and receipt.

        A printer failure keeps the outcome completed, sets ``error`` to the printer's
        error (its message says how to reprint) and leaves the job journaled for reprint.
        """
        with self._lock:
            self._expect(S.PRODUCE)
            try:
                produced = self._produce()
            except KioskError as err:
                if self.outcome is None:
                    self._fail(err)
                raise
            self.produced = produced
            self._advance()
            return produced

    def _produce(self) -> Produced:
        item = self.item
        if item.kind == "guide" or not item.operation:
            display = tuple(self._guide_lines())
            self.session.display = list(display)
            return Produced(display=display)
        result = self._operate()
        display = tuple(result.get("display") or ())
        self.session.display = list(display)
        reference = str(result.get("reference") or "")
        doc = result.get("document")
        docs = [doc] if doc else []
        self.session.documents.extend(docs)
        pdfs: list[Path] = []
        receipts: list[bytes] = []
        undelivered: list[str] = []
        outputs = set(item.outputs)
        if "a4_document" in outputs:
            for n, document in enumerate(docs):
                path, err = self.engine.print_document(self, document, n)
                pdfs.append(path)
                if err is not None:
                    undelivered.append(err.code)
                    self.error, self.reason = err, err.code
        if outputs & {"receipt", "slip"} and not item.slip_on_request:
            data, err = self.engine.print_receipt(self, reference, display, docs)
            if data:
                receipts.append(data)
            if err is not None:
                undelivered.append(err.code)
                if self.error is None:
                    self.error, self.reason = err, err.code
        return Produced(tuple(pdfs), tuple(receipts), display, reference,
                        tuple(d["verification_code"] for d in docs if d.get("verification_code")),
                        tuple(undelivered), slip_offered=item.slip_on_request and self.engine.receipt_printer_ready())

    def print_slip(self) -> bytes:
        """Print a query's slip once its results were shown, because the resident asked; returns its bytes.

        Once per transaction (asking again returns the slip printed). Not journaled: nothing
        was issued or paid, so a slip that fails is not owed later; the resident sees why
        and may try again. Raises StepError (nothing to print here), DeviceError (printer).
        """
        with self._lock:
            produced = self.produced
            if self.outcome is not Outcome.COMPLETED or produced is None or not produced.slip_offered:
                raise StepError("this transaction has no slip to print")
            if self._slip is None:
                data = self.engine.receipt_bytes(self, produced.reference, produced.display, [])
                self.engine.devices.receipt_printer.print_bytes(data)
                log.info("txn=%s item=%s slip printed on request", self.id, self.item.id)
                self._slip = data
            return self._slip

    def _guide_lines(self) -> list[dict[str, str]]:
        return [{"label_zh": self.item.name_zh, "label_en": self.item.name_en,
                 "value": getattr(self.item, "guide_zh", "") or ""},
                {"label_zh": "办理材料", "label_en": "Materials",
                 "value": "、".join(getattr(self.item, "materials_zh", ()) or ())}]

    @property
    def kiosk_reference(self) -> str:
        """The number the resident is given when the outcome of the operation is unknown."""
        return kiosk_reference(self.engine.terminal_id, self.id)

    def _operate(self) -> dict[str, Any]:
        key = self._key(J.OPERATE)
        order_id = (self.order or {}).get("order_id") if self._paid else None
        self._save_resume(order_id=order_id or "")
        self.journal.begin(key, self.id, self.item.id, S.PRODUCE.value, J.OPERATE, id_hash=self._id_hash,
                           refs={"operation": self.item.operation, "session": self.session.id,
                                 **({"order_id": order_id} if order_id else {})})
        # One call: the adapter asks again under the same key until it gets an answer it can
        # trust or the deadline passes (the backend replays its stored answer to a repeated key).
        until = time.monotonic() + self.engine.unknown_outcome_s
        try:
            result = self.engine.backend.operate(
                self.item.operation, self.item.id, self.session.id_number or None, self.form_values,
                payment_order_id=order_id, idempotency_key=key, until=until)
        except BackendRefused as err:  # a business rule said no: nothing was done
            self.journal.fail(key, err.rule)
            if order_id:
                self.engine.refund(self, order_id, err)
            raise
        except BackendRejected as err:
            from kiosk.services.backend import IdempotencyConflict

            if isinstance(err, IdempotencyConflict):
                # The key already stands for a request the backend took: what it did is learnt later.
                raise self._unknown(key, order_id, err) from err
            self.journal.fail(key, err.code)  # refused before anything was done (auth, schema, revoked)
            if order_id:
                self.engine.refund(self, order_id, err)
            raise
        except BackendError as err:  # no trustworthy answer by the deadline: it may well have happened
            raise self._unknown(key, order_id, err) from err
        doc = result.get("document") or {}
        self.journal.complete(key, {
            "reference": str(result.get("reference") or ""),
            **({"document_id": doc["document_id"], "doc_type": doc.get("doc_type", ""),
                "verification_code": doc.get("verification_code", "")} if doc else {})})
        return result

    def _unknown(self, key: str, order_id: str | None, cause: BackendError) -> OutcomeUnknown:
        """Keep the operation open in the journal and tell the resident their reference number."""
        self.journal.note(key, {"outcome": UNKNOWN})
        log.error("txn=%s item=%s operation outcome unknown after %s (reference %s)", self.id, self.item.id,
                  cause.code, self.kiosk_reference)
        if order_id:
            self.engine._alarm(PAID_UNDELIVERED, self.id, self.item.id)
        return OutcomeUnknown(f"{self.item.operation}: no confirmed answer ({cause.code})",
                              reference=self.kiosk_reference)

    # --- reprint, cancel, finish -------------------------------------------------------
    def reprint(self) -> Produced:
        """Print again what this card's holder was owed (fetched again from the backend)."""
        with self._lock:
            if self.session.identity is None:
                raise StepError("reprint needs the ID card read first")
            produced = self.engine.reprint(self.session.identity, session=self.session)
            self.pending_reprints = tuple(self.engine.pending_reprints(self.session.identity))
            return produced

    def cancel(self, reason: str = "cancel") -> None:
        """The resident cancels (or the screen timed out, reason "timeout"); an open order is cancelled.

        When the payment already arrived the service is still delivered: the operation runs
        and its prints are owed to the card (reprinted when it is read again).
        """
        with self._lock:
            if self.outcome is not None:
                return
            why = "timeout" if reason == "timeout" else "cancelled"
            if self.step is S.PAY and self.order is not None and not self._paid:
                try:
                    self._cancel_order(timeout=False)
                except KioskError:
                    pass  # journaled; recovery settles the order
                if self.outcome is not None:
                    if self.outcome is Outcome.CANCELLED:
                        self.reason = why
                    return
            if self._paid:
                self._produce_unattended()
                return
            self._end(Outcome.CANCELLED, why)

    def _produce_unattended(self) -> None:
        try:
            self._operate()
        except KioskError as err:  # _operate journaled it and refunded what it could not deliver
            self._fail(err)
            return
        _owe_prints(self.engine, self.id, self.item.id, self._id_hash, RecoveryAction(self.id, self.item.id),
                    code="resident_left")
        self._end(Outcome.COMPLETED, "resident_left")

    def finish(self) -> None:
        """End the transaction and wipe its session (folder, spool files, personal fields)."""
        with self._lock:
            if self.outcome is None:
                self.cancel()
            if self.outcome is None:  # paid, not produced yet: do not lose it
                raise StepError("the payment arrived: produce before finishing")
            reason = {Outcome.COMPLETED: EndReason.DONE}.get(self.outcome, EndReason.CANCEL)
            if self.reason == "timeout":
                reason = EndReason.TIMEOUT
            self.session.end(reason)
            self.engine._forget(self)


# --- the engine ----------------------------------------------------------------------
class WorkflowEngine:
    """Starts transactions and owns what they share: catalog, backend, devices, journal, sessions."""

    def __init__(self, catalog: Any, backend: Any, devices: Any, journal: J.Journal,
                 sessions: "SessionStore", config: Any) -> None:
        self.catalog = catalog
        self.backend = backend
        self.devices = devices
        self.journal = journal
        self.sessions = sessions
        self.config = config
        self._active: dict[str, Transaction] = {}
        self._lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic  # tests move time forward instead of sleeping
        # Called once per transaction when its outcome is set (statistics, metrics); see TransactionEnded.
        self.on_end: list[Callable[[TransactionEnded], None]] = []
        # Checked before a transaction starts (the runtime refuses disk-using items on a full disk).
        self.admit: Callable[[Any], None] | None = None
        # Told of every paid service not delivered and every failed refund (metrics, alert rules).
        self.on_alarm: list[Callable[[MoneyAlarm], None]] = []
        from print_templates.pdf_signing import PdfSigner

        self.pdf_signer = PdfSigner.from_config(config)  # None unless [printing] names a key; loaded once

    @property
    def terminal_id(self) -> str:
        return self.config.terminal.id

    @property
    def payment_timeout_s(self) -> float:
        return float(self.config.payment.timeout_s)

    @property
    def unknown_outcome_s(self) -> float:
        """How long an operation whose answer was lost is asked again before its outcome counts as unknown."""
        return float(self.config.backend.unknown_outcome_s)

    def _alarm(self, kind: str, txn_id: str, item_id: str) -> None:
        """Tell the on_alarm listeners (a failing listener is logged only)."""
        alarm = MoneyAlarm(kind, item_id, txn_id, kiosk_reference(self.terminal_id, txn_id))
        log.error("alarm %s: txn=%s item=%s reference %s", kind, txn_id, item_id, alarm.reference)
        for listener in list(self.on_alarm):
            try:
                listener(alarm)
            except Exception:  # an alarm must never break the transaction it reports
                log.exception("on_alarm listener failed for %s", kind)

    def start(self, item_id: str) -> Transaction:
        """Begin a transaction for ``item_id``. Raises UnknownItemError."""
        item = self.catalog.get(item_id)
        if self.admit is not None:
            self.admit(item)
        txn = Transaction(self, item, self.sessions.new())
        with self._lock:
            self._active[txn.id] = txn
        log.info("txn=%s item=%s start step=%s", txn.id, item.id, txn.step.value)
        return txn

    def _ended(self, txn: Transaction) -> None:
        """Tell the on_end listeners, once, that ``txn`` has its outcome; a failing listener is logged only."""
        if txn._ended_reported or txn.outcome is None:
            return
        txn._ended_reported = True
        rating = rated = ""
        rule = txn.item.rating
        if rule is not None and txn.outcome is Outcome.COMPLETED:
            values = txn.session.fields
            rating = str(values.get(rule.choice_field) or "")
            rated = str(values.get(rule.rated_item_field) or "") if rule.rated_item_field else ""
        ended = TransactionEnded(txn.item.id, txn.outcome.value, txn.reason, max(0.0, self.clock() - txn._started_at),
                                 rating, rated)
        for listener in list(self.on_end):
            try:
                listener(ended)
            except Exception:  # counting must never break a resident's transaction
                log.exception("on_end listener failed for item=%s", txn.item.id)

    def _forget(self, txn: Transaction) -> None:
        with self._lock:
            self._active.pop(txn.id, None)

    def active(self) -> list[Transaction]:
        """Transactions started and not finished."""
        with self._lock:
            return list(self._active.values())

    # --- identity --------------------------------------------------------------------
    def read_card(self, item: Any | None = None, access: tuple[str, str, str] | None = None) -> IdentityCard:
        """Read the resident's document: the ID card reader, or for travel documents the chip
        over PC/SC with BAC keys from ``access`` (typed by the resident) or else from the MRZ
        the scanner reads off the data page."""
        if item is not None and item.identity == "travel_document":
            from kiosk.hardware.icao.mrz import parse_mrz

            if access is None:
                access = parse_mrz(self.devices.scanner.scan()).access_data()
            card = self.devices.pcsc.read_document(*access)
            self.check_chip(card, access)
            return card
        return self.devices.id_card.read_card()

    def check_chip(self, card: IdentityCard, access: tuple[str, str, str]) -> None:
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
        elif extra.get("chain_valid") == "false" or (self.config.profile == "production"
                                                    and extra.get("chain_valid") != "true"):
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

    def check_card(self, item: Any, card: IdentityCard) -> None:
        """Apply the kiosk's identity rules for ``item``. Raises Refused."""
        if card.card_type not in item.accepted_cards:
            raise refusal("card_type_not_accepted")
        if card.valid_to and card.valid_to != "long-term":
            try:
                expiry = dt.date.fromisoformat(card.valid_to)
            except ValueError:
                expiry = None
            if (expiry is None or expiry < _today()) and not item.accepts_expired_card:
                raise refusal("id_card_expired" if card.card_type == "resident" else "document_expired")

    # --- printing --------------------------------------------------------------------
    def print_document(self, txn: Transaction, document: Mapping[str, Any], n: int,
                       *, key: str | None = None, of_key: str = "") -> tuple[Path, DeviceError | None]:
        """Render and print one A4 document (journaled); returns the PDF and the printer error if any."""
        from print_templates.documents import render_pdf

        session = txn.session
        pdf = render_pdf(document, session.file(f"document-{n}.pdf"), terminal_id=self.terminal_id,
                         signer=self.pdf_signer)
        key = key or txn._key(J.PRINT_A4, n)
        refs = {"document_id": document["document_id"], "doc_type": document.get("doc_type", ""),
                "verification_code": document.get("verification_code", ""), "session": session.id,
                **({"of_key": of_key} if of_key else {})}
        self.journal.begin(key, txn.id, txn.item.id, S.PRODUCE.value, J.PRINT_A4, id_hash=txn._id_hash,
                           refs=refs)
        spooled = session.spool_file(f"a4-{n}.pdf")
        shutil.copyfile(pdf, spooled)
        try:
            job = self.devices.a4_printer.print_pdf(spooled, title=str(document.get("title_en", "")))
        except DeviceError as err:
            self.journal.fail(key, err.code)
            log.warning("txn=%s a4 print failed: %s", txn.id, err.code)
            return pdf, err
        finally:
            shred(spooled)
        self.journal.complete(key, {"job_id": str(job)})
        return pdf, None

    def _receipt_data(self, item: Any, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], amount_fen: int = 0, kiosk_ref: str = "") -> dict[str, Any]:
        lines: list[list[str]] = [[str(d.get("label_zh", "")), str(d.get("value", ""))] for d in display]
        if amount_fen:
            lines.append(["金额 Amount", f"¥{amount_fen / 100:.2f}"])
        if kiosk_ref:  # the number the resident was given when the outcome was unknown
            lines.append(["受理编号 Kiosk ref.", kiosk_ref])
        data: dict[str, Any] = {
            "item_name_zh": item.name_zh, "item_name_en": item.name_en, "terminal_id": self.terminal_id,
            "time": localtime.stamp(), "reference": reference, "lines": lines}
        if docs:
            data["verification_code"] = docs[0].get("verification_code", "")
            data["qr_payload"] = docs[0].get("qr_payload", "")
            data["signature"] = docs[0].get("signature", "")
        return data

    def receipt_printer_ready(self) -> bool:
        """Whether the receipt printer is there and can print now (asked of the device itself)."""
        printer = self.devices.receipt_printer
        if printer is None:
            return False
        try:
            return bool(printer.status().usable)
        except Exception:  # a status that cannot be read is not a printer to promise a slip from
            return False

    def receipt_bytes(self, txn: Transaction, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], kiosk_ref: str = "") -> bytes:
        """The ESC/POS bytes of the transaction's receipt or slip, for the configured printer."""
        from print_templates.receipts import render_receipt

        amount = txn.amount_fen if txn._paid else 0
        data = self._receipt_data(txn.item, reference, display, docs, amount, kiosk_ref)
        return render_receipt(_receipt_kind(txn.item), data,
                              profile=getattr(self.devices.receipt_printer, "profile", "80mm"))

    def print_receipt(self, txn: Transaction, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], *, key: str | None = None,
                      of_key: str = "", kiosk_ref: str = "") -> tuple[bytes, DeviceError | None]:
        """Render and print the transaction's receipt or slip (journaled)."""
        kind = _receipt_kind(txn.item)
        amount = txn.amount_fen if txn._paid else 0
        printer = self.devices.receipt_printer
        data = self.receipt_bytes(txn, reference, display, docs, kiosk_ref)
        key = key or txn._key(J.PRINT_RECEIPT)
        refs: dict[str, Any] = {"reference": reference, "receipt_kind": kind, "session": txn.session.id,
                                **({"of_key": of_key} if of_key else {})}
        if amount:
            refs["amount_fen"] = amount
            refs["order_id"] = (txn.order or {}).get("order_id", "")
        if docs:
            refs["verification_code"] = docs[0].get("verification_code", "")
            refs["document_id"] = docs[0].get("document_id", "")
        self.journal.begin(key, txn.id, txn.item.id, S.PRODUCE.value, J.PRINT_RECEIPT, id_hash=txn._id_hash,
                           refs=refs)
        try:
            printer.print_bytes(data)  # bytes go straight to the printer: nothing to spool
        except DeviceError as err:
            self.journal.fail(key, err.code)
            log.warning("txn=%s receipt print failed: %s", txn.id, err.code)
            return data, err
        self.journal.complete(key)
        return data, None

    # --- payments ------------------------------------------------------------------------
    def refund(self, txn: Transaction | None, order_id: str, cause: KioskError | None = None, *,
               txn_id: str = "", item_id: str = "", id_hash: str = "") -> bool:
        """Refund a paid order whose service could not be delivered (journaled); True when refunded."""
        txn_id = txn.id if txn else txn_id
        item_id = txn.item.id if txn else item_id
        id_hash = txn._id_hash if txn else id_hash
        key = f"{txn_id}-{J.PAY_REFUND}-0"
        existing = self.journal.get(key)
        if existing is not None and existing.state == J.DONE:
            return True
        self.journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.PAY_REFUND, id_hash=id_hash,
                           refs={"order_id": order_id})
        from kiosk.services.backend import OrderNotRefundable

        try:
            order = self.backend.refund_order(order_id, idempotency_key=key)
        except OrderNotRefundable as err:
            # Nothing to give back: an operation used the order (OrderConsumed), or it was never paid.
            self.journal.resolve(key, err.code)
            return False
        except KioskError as err:
            # Left begun on purpose: the next recovery retries the refund under the same key.
            log.error("txn=%s refund of %s failed: %s (cause %s)", txn_id, order_id, err.code,
                      cause.code if cause else "-")
            self._alarm(REFUND_FAILED, txn_id, item_id)
            return False
        self.journal.complete(key, {"order_status": order.get("status", "")})
        return True

    # --- reprint ---------------------------------------------------------------------
    def pending_reprints(self, card: IdentityCard) -> list[PendingReprint]:
        """Documents and receipts issued to this card's holder but never printed."""
        out = []
        for e in self.journal.undelivered(self.journal.id_hash(card.id_number)):
            out.append(PendingReprint(e.key, e.item_id, e.kind, str(e.refs.get("document_id", "")),
                                      str(e.refs.get("reference", "")),
                                      str(e.refs.get("verification_code", ""))))
        return out

    def reprint(self, card: IdentityCard, session: Session | None = None) -> Produced:
        """Fetch this holder's unprinted documents again from the backend and print them (and owed receipts)."""
        own = session is None
        session = session or self.sessions.new()
        if own:
            session.set_identity(card)
        pdfs: list[Path] = []
        receipts: list[bytes] = []
        undelivered: list[str] = []
        codes: list[str] = []
        try:
            for n, pending in enumerate(self.pending_reprints(card)):
                item = self.catalog.get(pending.item_id)
                txn = Transaction(self, item, session)
                txn._id_hash = self.journal.id_hash(card.id_number)
                key = f"{pending.key}-reprint-{secrets.token_hex(3)}"
                if pending.kind == J.PRINT_A4:
                    doc = self.backend.fetch_document(pending.document_id, card.id_number)
                    session.documents.append(doc)
                    path, err = self.print_document(txn, doc, 100 + n, key=key, of_key=pending.key)
                    pdfs.append(path)
                    codes.append(doc.get("verification_code", ""))
                else:
                    entry = self.journal.get(pending.key)
                    refs = entry.refs if entry else {}
                    txn.amount_fen = int(refs.get("amount_fen") or 0)
                    txn._paid = bool(txn.amount_fen)
                    txn.order = {"order_id": refs.get("order_id", "")}
                    data, err = self.print_receipt(txn, pending.reference, (), [], key=key, of_key=pending.key)
                    receipts.append(data)
                if err is None:
                    self.journal.resolve(pending.key, "reprinted")
                else:  # the original entry stays owed; this attempt must not be owed twice
                    self.journal.resolve(key, "reprint_failed")
                    undelivered.append(err.code)
        finally:
            if own:
                session.end(EndReason.DONE)
        return Produced(tuple(pdfs), tuple(receipts), (), "", tuple(codes), tuple(undelivered))


class SessionStore:
    """Makes the sessions of one terminal (all under ``<state_dir>/sessions``)."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def new(self) -> Session:
        """A fresh session with its own folder."""
        return Session(self.state_dir)


# --- recovery ------------------------------------------------------------------------
@dataclass
class RecoveryAction:
    """What recovery did for one transaction (no personal data).

    ``printed`` lists what it printed (``receipt``), ``refunded`` the order it refunded,
    ``reference`` the number the resident was given (kiosk_reference).
    """

    txn_id: str
    item_id: str
    actions: list[str] = field(default_factory=list)
    reference: str = ""
    printed: list[str] = field(default_factory=list)
    refunded: str = ""


def _unsettled(entries: list[J.Entry], outputs: set[str]) -> bool:
    kinds = {(e.kind, e.state) for e in entries}
    if any(e.state == J.BEGUN for e in entries):
        return True
    if _missing_prints(entries, outputs):
        return True
    created = (J.PAY_CREATE, J.DONE) in kinds
    operated = (J.OPERATE, J.DONE) in kinds
    refunded = (J.PAY_REFUND, J.DONE) in kinds
    if not created or operated or refunded:
        return False
    # An order nothing was produced for: even a cancelled one can still be paid late (the
    # resident's phone was slower than the kiosk), so it is reconciled for a while.
    newest = max(e.updated_at for e in entries)
    return time.time() - newest < LATE_PAYMENT_WINDOW_S


def _outputs(engine: WorkflowEngine, item_id: str) -> set[str]:
    """What the item prints by itself (a query's slip is printed only on request, never owed)."""
    try:
        item = engine.catalog.get(item_id)
    except KioskError:
        return set()
    return set(item.outputs) - ({"slip"} if item.slip_on_request else set())


def _missing_prints(entries: list[J.Entry], outputs: set[str]) -> list[str]:
    """Print kinds an operation that went through still owes (the crash came before their journal entry)."""
    done = [e for e in entries if e.kind == J.OPERATE and e.state == J.DONE]
    if not done:
        return []
    have = {e.kind for e in entries}
    missing = []
    if done[-1].refs.get("document_id") and "a4_document" in outputs and J.PRINT_A4 not in have:
        missing.append(J.PRINT_A4)
    if outputs & {"receipt", "slip"} and J.PRINT_RECEIPT not in have:
        missing.append(J.PRINT_RECEIPT)
    return missing


def recover(engine: WorkflowEngine, *, wipe: bool = True) -> list[RecoveryAction]:
    """Resolve what a crash left half done, then wipe leftover sessions and spool files.

    ``wipe=False`` (a running kiosk settling late payments) leaves the session folders alone.
    For each unsettled transaction: a half-created order is re-created under the same
    key and reconciled; an open order is cancelled, or when it was paid the operation is
    resumed under its idempotency key (from the crashed session's resume record) or, when
    the data to resume it is gone, settled by what the backend says became of that key
    (refunded only when it says the operation did not happen); an interrupted print is
    kept as owed, to reprint when the card is read again. An operation whose outcome the
    resident was told is unknown is settled the same way, and its slip printed at once;
    that waits while a resident is at the kiosk (the slip is not theirs to take).
    """
    journal = engine.journal
    live = {txn.id for txn in engine.active()}  # a running kiosk reconciles around its open sessions
    by_txn: dict[str, list[J.Entry]] = {}
    for e in journal.entries():
        if e.txn_id not in live:
            by_txn.setdefault(e.txn_id, []).append(e)
    report = []
    unsettled = {t: es for t, es in by_txn.items() if _unsettled(es, _outputs(engine, es[0].item_id))
                 and not (live and _outcome_unknown(es))}
    # One reconcile call for every known order instead of one per transaction.
    known = sorted({str(e.refs["order_id"]) for es in unsettled.values() for e in es
                    if e.kind == J.PAY_CREATE and e.refs.get("order_id")})
    statuses: dict[str, str] = {}
    if known:
        try:
            statuses = {o["order_id"]: o["status"] for o in engine.backend.reconcile(known)["orders"]}
        except KioskError as err:
            log.error("recovery reconcile failed: %s", err.code)
    for txn_id, entries in unsettled.items():
        action = RecoveryAction(txn_id, entries[0].item_id)
        if _outcome_unknown(entries):
            action.reference = kiosk_reference(engine.terminal_id, txn_id)
        try:
            _recover_txn(engine, txn_id, entries, action, statuses)
        except KioskError as err:
            action.actions.append(f"postponed:{err.code}")
            log.error("recovery of txn=%s postponed: %s", txn_id, err.code)
        report.append(action)
        log.info("recovered txn=%s item=%s actions=%s", txn_id, action.item_id, ",".join(action.actions))
    if wipe:
        wipe_leftovers(engine.sessions.state_dir)
    return report


def _outcome_unknown(entries: list[J.Entry]) -> bool:
    """An operation still open whose resident was told its outcome is unknown."""
    return any(e.kind == J.OPERATE and e.state == J.BEGUN and e.refs.get("outcome") == UNKNOWN for e in entries)


def _recover_txn(engine: WorkflowEngine, txn_id: str, entries: list[J.Entry], action: RecoveryAction,
                 statuses: Mapping[str, str]) -> None:
    journal, backend = engine.journal, engine.backend
    item_id = entries[0].item_id
    id_hash = next((e.id_hash for e in entries if e.id_hash), "")
    session_id = next((str(e.refs["session"]) for e in entries if e.refs.get("session")), "")
    resume = load_resume(engine.sessions.state_dir, session_id) if session_id else None
    latest = {e.kind: e for e in entries}  # the last entry of each kind wins
    order_id = ""

    create = latest.get(J.PAY_CREATE)
    if create is not None:
        order_id = str(create.refs.get("order_id", ""))
        if create.state == J.BEGUN:
            # Same key: the backend hands back the order it may already have made.
            order = backend.create_order(item_id=item_id, amount_fen=int(create.refs.get("amount_fen", 0)),
                                         reference=str(create.refs.get("reference", txn_id)),
                                         description=str(create.refs.get("description", "")),
                                         idempotency_key=create.key)
            order_id = order["order_id"]
            journal.complete(create.key, {"order_id": order_id, "order_status": order["status"]})
            action.actions.append("order_recreated")

    operate = latest.get(J.OPERATE)
    operated = operate is not None and operate.state == J.DONE
    refunded = any(e.kind == J.PAY_REFUND and e.state == J.DONE for e in entries)
    paid = any(e.kind == J.PAY_PAID for e in entries)

    if order_id and not operated and not refunded:
        status = statuses.get(order_id) or backend.reconcile([order_id])["orders"][0]["status"]
        if status == "pending":
            cancel_key = f"{txn_id}-{J.PAY_CANCEL}-r"
            journal.begin(cancel_key, txn_id, item_id, S.PAY.value, J.PAY_CANCEL, id_hash=id_hash,
                          refs={"order_id": order_id})
            order = backend.cancel_order(order_id, idempotency_key=cancel_key)
            status = order["status"]
            if status == "paid":
                journal.fail(cancel_key, "already_paid")
            else:
                journal.complete(cancel_key, {"order_status": status})
                action.actions.append("order_cancelled")
        if status == "paid":
            if not paid:
                journal.record(f"{txn_id}-{J.PAY_PAID}", txn_id, item_id, S.PAY.value, J.PAY_PAID,
                               id_hash=id_hash, refs={"order_id": order_id})
                action.actions.append("late_payment_seen")
            paid = True
        for e in entries:  # a cancel that failed earlier is settled by what reconcile said
            if e.kind == J.PAY_CANCEL and e.state in (J.BEGUN, J.FAILED) and status != "paid":
                journal.resolve(e.key, f"order_{status}")

    if operate is not None and operate.state == J.BEGUN:
        _resume_operate(engine, txn_id, item_id, operate.key, id_hash, order_id if paid else "", resume, action)
    elif paid and operate is None and not refunded:
        # Paid (perhaps late) and never operated: produce if the session survived, else refund.
        _resume_operate(engine, txn_id, item_id, f"{txn_id}-{J.OPERATE}-0", id_hash, order_id, resume, action)
    elif paid and operate is not None and operate.state == J.FAILED and not refunded:
        if engine.refund(None, order_id, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
            action.actions.append("refunded")
            action.refunded = order_id

    _owe_prints(engine, txn_id, item_id, id_hash, action)
    for e in entries:
        if e.kind in (J.PRINT_A4, J.PRINT_RECEIPT) and e.state == J.BEGUN:
            journal.fail(e.key, "interrupted")  # owed: reprinted when the card is read again
            action.actions.append(f"{e.kind}_owed")
        elif e.kind == J.PAY_CANCEL and e.state == J.BEGUN:
            journal.resolve(e.key, "settled_by_reconcile")
        elif e.kind == J.PAY_REFUND and e.state == J.BEGUN and journal.get(e.key).state == J.BEGUN:
            if engine.refund(None, str(e.refs.get("order_id")), txn_id=txn_id, item_id=item_id, id_hash=id_hash):
                action.actions.append("refunded")
                action.refunded = str(e.refs.get("order_id"))


def _resume_operate(engine: WorkflowEngine, txn_id: str, item_id: str, key: str, id_hash: str,
                    order_id: str, resume: Mapping[str, Any] | None, action: RecoveryAction) -> None:
    journal = engine.journal
    item = engine.catalog.get(item_id)
    sent = journal.get(key) is not None  # begun before it was sent: without an entry it never left the kiosk
    if not sent:
        journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.OPERATE, id_hash=id_hash,
                      refs={"operation": item.operation, **({"order_id": order_id} if order_id else {})})
    if resume is None:
        if sent:
            # The data to send it again is gone with the session: ask what became of the key.
            _settle_by_outcome(engine, txn_id, item_id, key, id_hash, order_id, action)
            return
        # Never sent and cannot be finished without the crashed session's data: give the money back.
        journal.fail(key, "abandoned")
        action.actions.append("operate_abandoned")
        if order_id and engine.refund(None, order_id, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
            action.actions.append("refunded")
            action.refunded = order_id
        return
    try:
        result = engine.backend.operate(item.operation, item_id, resume.get("id_number") or None,
                                        dict(resume.get("fields") or {}),
                                        payment_order_id=order_id or None, idempotency_key=key)
    except BackendRefused as err:
        journal.fail(key, err.rule)
        action.actions.append(f"operate_refused:{err.rule}")
        if order_id and engine.refund(None, order_id, err, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
            action.actions.append("refunded")
            action.refunded = order_id
        return
    journal.complete(key, _operate_refs(result))
    action.actions.append("operate_resumed")


def _operate_refs(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the journal keeps of an operation's answer: references, never content."""
    doc = result.get("document") or {}
    return {"reference": str(result.get("reference") or ""),
            **({"document_id": doc["document_id"], "doc_type": doc.get("doc_type", ""),
                "verification_code": doc.get("verification_code", "")} if doc else {})}


def _settle_by_outcome(engine: WorkflowEngine, txn_id: str, item_id: str, key: str, id_hash: str,
                       order_id: str, action: RecoveryAction) -> None:
    """Ask the backend what became of operation ``key``; complete it (printing the slip the resident
    was promised) or fail it, refunding only when the backend says it did not happen."""
    journal = engine.journal
    promised = (journal.get(key) or J.Entry("", "", "", "", "", "", "")).refs.get("outcome") == UNKNOWN
    answer = engine.backend.outcome(key)  # a BackendError postpones it: the entry stays open
    outcome = answer.get("outcome")
    if outcome == "performed":
        result = answer.get("result") or {}
        journal.complete(key, _operate_refs(result))
        action.actions.append("operate_confirmed")
        if promised:
            _print_promised_slip(engine, txn_id, item_id, id_hash, order_id, result, action)
        return
    rule = str((answer.get("refusal") or {}).get("rule") or "")
    journal.fail(key, rule or "not_performed")
    action.actions.append(f"operate_refused:{rule}" if outcome == "refused" else "operate_not_performed")
    if order_id and engine.refund(None, order_id, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
        action.actions.append("refunded")
        action.refunded = order_id


def _print_promised_slip(engine: WorkflowEngine, txn_id: str, item_id: str, id_hash: str, order_id: str,
                         result: Mapping[str, Any], action: RecoveryAction) -> None:
    """Print the receipt (or slip) of an operation the resident was told to collect at the counter.

    Journaled like any print; one that fails is owed as usual. A4 documents are not printed
    here: they hold the resident's personal data and are reprinted when their card is read.
    """
    item = engine.catalog.get(item_id)
    if not ({"receipt", "slip"} & set(item.outputs)) or item.slip_on_request or engine.devices.receipt_printer is None:
        return  # nothing to print here (an owed receipt is then journaled by _owe_prints)
    session = engine.sessions.new()
    try:
        txn = Transaction(engine, item, session)
        txn.id, txn._id_hash = txn_id, id_hash
        if order_id:
            created = next((e for e in engine.journal.entries(txn_id) if e.kind == J.PAY_CREATE), None)
            txn.amount_fen = int((created.refs.get("amount_fen") if created else 0) or 0)
            txn._paid, txn.order = bool(txn.amount_fen), {"order_id": order_id}
        doc = result.get("document")
        _, err = engine.print_receipt(txn, str(result.get("reference") or ""), result.get("display") or (),
                                      [doc] if doc else [], kiosk_ref=kiosk_reference(engine.terminal_id, txn_id))
        if err is None:
            action.actions.append("receipt_printed")
            action.printed.append("receipt")
        else:
            action.actions.append(f"print_receipt_owed:{err.code}")
    finally:
        session.end(EndReason.DONE)


def _owe_prints(engine: WorkflowEngine, txn_id: str, item_id: str, id_hash: str, action: RecoveryAction,
                code: str = "interrupted") -> None:
    """Journal as owed the prints an operation that went through never got to (reprinted on the next card read).

    The resident is gone by now: a document is never printed to an empty kiosk.
    """
    journal = engine.journal
    entries = journal.entries(txn_id)
    missing = _missing_prints(entries, _outputs(engine, item_id))
    if not missing:
        return
    operate = [e for e in entries if e.kind == J.OPERATE and e.state == J.DONE][-1]
    refs = operate.refs
    doc = {k: refs[k] for k in ("document_id", "doc_type", "verification_code") if refs.get(k)}
    if J.PRINT_A4 in missing:
        key = f"{txn_id}-{J.PRINT_A4}-0"
        journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.PRINT_A4, id_hash=id_hash, refs=doc)
        journal.fail(key, code)
        action.actions.append("print_a4_owed")
    if J.PRINT_RECEIPT in missing:
        key = f"{txn_id}-{J.PRINT_RECEIPT}-0"
        rrefs: dict[str, Any] = {"reference": str(refs.get("reference", "")),
                                 "receipt_kind": _receipt_kind(engine.catalog.get(item_id))}
        if refs.get("order_id"):
            created = next((e for e in entries if e.kind == J.PAY_CREATE), None)
            rrefs.update(order_id=refs["order_id"],
                         amount_fen=int(created.refs.get("amount_fen", 0)) if created else 0)
        if doc:
            rrefs.update(document_id=doc["document_id"], verification_code=doc.get("verification_code", ""))
        journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.PRINT_RECEIPT, id_hash=id_hash, refs=rrefs)
        journal.fail(key, code)
        action.actions.append("print_receipt_owed")
