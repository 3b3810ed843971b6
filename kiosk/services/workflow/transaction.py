"""One resident doing one item: the Transaction, whose methods the screens call one per step."""
from __future__ import annotations

import logging
import secrets
import threading
from typing import TYPE_CHECKING, Any, Mapping

from kiosk import localtime
from kiosk.errors import (BackendProtocolError, BackendRefused, BackendServerError, BackendTimeout, BackendUnavailable,
                          KioskError, PaymentTimeout)
from kiosk.hardware.icao.mrz import keyed_access_data
from kiosk.hardware.idcard import IdentityCard
from kiosk.services.catalog import CatalogItem, FieldSpec
from kiosk.services.session import EndReason, Session
from kiosk.services.workflow import form
from kiosk.services.workflow.operation import run_operation
from kiosk.services.workflow.payment import PaymentOrder
from kiosk.services.workflow.production import PrintContext, owe_prints
from kiosk.services.workflow.reading import capture_face, read_card, scan_access
from kiosk.services.workflow.records import (FaceResult, PendingReprint, Produced, TransactionEnded, TxnRef,
                                             kiosk_reference)
from kiosk.services.workflow.rules import FACE_TRIES, RETRYABLE_READS, Refused, check_card, refusal
from kiosk.services.workflow.steps import (NAVMAP, KindPath, Outcome, Step, StepError, TransactionClosed,
                                           first_applicable)

if TYPE_CHECKING:
    from kiosk.services.face.step import FaceOutcome
    from kiosk.services.workflow.engine import WorkflowEngine

log = logging.getLogger(__name__)

# Lookup failures after which asking again may work: the backend down, slow, failing or answering garbage.
# A refusal, a rejected request or a bad signature ends the transaction as before.
LOOKUP_ASK_AGAIN = (BackendUnavailable, BackendTimeout, BackendServerError, BackendProtocolError)
S = Step


class Transaction:
    """One resident doing one item. Screens call one method per step.

    After any exception other than FieldError and a retryable card read (NoCard,
    CardRemoved, DeviceTimeout, DeviceProtocolError), ``outcome`` is set; what was
    issued or paid is kept in the journal.
    """

    def __init__(self, engine: WorkflowEngine, item: CatalogItem, session: Session) -> None:
        self.engine = engine
        self.item = item
        self.session = session
        self.id = secrets.token_hex(12)
        self.amount_fen = int(round((item.fee_cny or 0) * 100))
        self.outcome: Outcome | None = None
        self.reason = ""
        self.error: KioskError | None = None
        self.produced: Produced | None = None
        self._slip: bytes | None = None  # the query slip printed on request
        self.face_tries = 0
        self.pending_reprints: tuple[PendingReprint, ...] = ()
        self.history: list[Step] = []
        self.ref = TxnRef(self.id, item.id)  # the id hash joins once the card is read
        self.payment = PaymentOrder(engine, self.ref, session.id)
        self._pay_deadline = 0.0
        self._lock = threading.RLock()
        self._started_at = engine.clock()
        self._ended_reported = False
        self.step: Step = first_applicable(self.path_spec.start, item, self.amount_fen)

    # --- navigation ------------------------------------------------------------------
    @property
    def path_spec(self) -> KindPath:
        """This item's path, from the navmap of its kind."""
        return NAVMAP[self.item.kind]

    def planned_path(self, amount_fen: int | None = None) -> list[Step]:
        """The steps this transaction will visit from now on, given what it knows so far (or ``amount_fen``)."""
        amount = self.amount_fen if amount_fen is None else amount_fen
        steps, step = [], self.step
        while step is not S.DONE and len(steps) < 10:
            steps.append(step)
            spec = self.path_spec.steps[step]
            step = S.DONE if spec.last else first_applicable(spec.next, self.item, amount)
        return steps

    def steps(self) -> list[Step]:
        """Every step of this visit, those done and those planned: what the screens' step indicator counts.

        Before the form tells the amount, an item that takes payment plans its payment step, so
        the count does not grow in the middle of the visit.
        """
        amount = self.amount_fen
        if not amount and self.item.needs_payment and self.item.fields and S.FORM not in self.history:
            amount = 1
        done = [step for step in self.history if step is not S.DONE]
        return done + [step for step in self.planned_path(amount) if step not in done]

    def _advance(self) -> Step:
        spec = self.path_spec.steps[self.step]
        self.history.append(self.step)
        self.step = S.DONE if spec.last else first_applicable(spec.next, self.item, self.amount_fen)
        if self.step is S.DONE and self.outcome is None:
            self.outcome = Outcome.COMPLETED
            self._report_end()
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
        self._report_end()

    def _fail(self, err: KioskError) -> None:
        if isinstance(err, BackendRefused):
            self._end(Outcome.REFUSED, err.rule, err)
        else:
            self._end(Outcome.FAILED, err.code, err)

    def _report_end(self) -> None:
        """Tell the engine's listeners, once, how this transaction ended (and a rating item's rating)."""
        if self._ended_reported or self.outcome is None:
            return
        self._ended_reported = True
        rating = rated = ""
        rule = self.item.rating
        if rule is not None and self.outcome is Outcome.COMPLETED:
            rating = str(self.session.fields.get(rule.choice_field) or "")
            rated = str(self.session.fields.get(rule.rated_item_field) or "") if rule.rated_item_field else ""
        self.engine.ended(TransactionEnded(self.item.id, self.outcome.value, self.reason,
                                           max(0.0, self.engine.clock() - self._started_at), rating, rated))

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
                access = keyed_access_data(*access)  # a FieldError leaves the step open
            try:
                if card is None:
                    card = read_card(self.engine.devices, self.item, access, production=self.engine.production)
                check_card(self.item, card, localtime.today())  # the station's day, as the backend counts it
            except RETRYABLE_READS:
                raise
            except KioskError as err:
                self._fail(err)
                raise
            self.session.set_identity(card)
            self.ref = TxnRef(self.id, self.item.id, self.engine.journal.id_hash(card.id_number))
            self.payment.ref = self.ref
            self.pending_reprints = tuple(self.engine.pending_reprints(card))
            self._advance()
            return list(self.pending_reprints)

    def scan_access(self, timeout: float = 1.0) -> tuple[str, str, str] | None:
        """BAC access data from a travel document's data page under the scanner, None when none came.

        For the identify screen to ask again and again without blocking the resident (who
        can type the details instead); hand the result to :meth:`identify`. Raises
        MrzUnreadable (what was scanned is not an MRZ) or another DeviceError.
        """
        self._expect(S.IDENTIFY)
        return scan_access(self.engine.devices, timeout)

    def face_check(self, image: bytes | None = None) -> FaceResult:
        """Match a live photo (None captures one from the camera) with the card holder.

        Three failed tries refuse with face_mismatch_send_to_counter.
        """
        with self._lock:
            self._expect(S.FACE)
            try:
                if image is None:
                    image = capture_face(self.engine.devices)
                self.session.keep_face_image(image)
                answer = self.engine.backend.compare_face(self.session.id_number, image)
            except RETRYABLE_READS:
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
                self._refuse("face_mismatch_send_to_counter")
            return FaceResult(matched, score, 0 if matched else left, "" if matched else "face_mismatch")

    def face_attempt(self, outcome: FaceOutcome) -> FaceResult:
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
                self._refuse("liveness_failed")
            return FaceResult(False, 0.0, left, "liveness_failed")

    def _refuse(self, rule: str) -> None:
        err: Refused = refusal(rule)
        self._fail(err)
        raise err

    # --- form ------------------------------------------------------------------------
    def field(self, name: str) -> FieldSpec:
        """The item's FieldSpec called ``name``. Raises FieldError."""
        return form.field(self.item, name)

    def options(self, field_name: str, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The choices of a lookup field, from the backend (e.g. this resident's unpaid fines).

        ``values`` are the form's entries so far, for lookups that depend on an earlier choice.
        """
        with self._lock:
            if self.outcome is not None:
                raise TransactionClosed(f"transaction already {self.outcome.value}")
            spec = self.field(field_name)
            if spec.type != "lookup":
                return form.choices(spec)
            try:
                opts = form.lookup(self.engine.backend, self.item, spec, self.session.id_number or None,
                                   values or self.form_values)
            except LOOKUP_ASK_AGAIN as err:
                # A read that changed nothing: the transaction stays open and the resident may ask again
                # (the form offers it); walking away ends it at the idle timeout, as any other pause.
                log.warning("lookup %s of %s failed (%s): the resident may ask again", spec.source, self.item.id,
                            err.code)
                raise
            except KioskError as err:
                self._fail(err)
                raise
            self.session.fields.setdefault("_options", {})[field_name] = opts
            return opts

    def submit_form(self, values: Mapping[str, Any]) -> Step:
        """Validate and keep the form values; raises FieldError (step unchanged) on the first bad one."""
        with self._lock:
            self._expect(S.FORM)
            clean = form.validate(self.item, values, self._offered)
            options = self.session.fields.get("_options", {})
            amount = self.item.amount_fen(clean, options)
            self.session.fields = {**clean, "_options": options}
            self.amount_fen = int(amount or 0)
            self._advance()
            return self.step

    def _offered(self, name: str) -> list[dict[str, Any]]:
        """The options the backend offered for lookup field ``name`` (asked for when not yet)."""
        opts = self.session.fields.get("_options", {}).get(name)
        return self.options(name) if opts is None else opts

    @property
    def form_values(self) -> dict[str, Any]:
        """The validated form values (no lookup caches)."""
        return {k: v for k, v in self.session.fields.items() if not k.startswith("_")}

    # --- confirm ---------------------------------------------------------------------
    def summary(self) -> list[form.SummaryRow]:
        """What the confirm screen shows, one row a line (label and value in each language), fee last."""
        return form.summary(self.item, self.form_values, self.session.fields.get("_options", {}), self.amount_fen)

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
            "order_id": self.payment.order_id, **extra})

    # --- pay -------------------------------------------------------------------------
    @property
    def order(self) -> dict[str, Any] | None:
        """The payment order as last seen (None before one was created)."""
        return self.payment.order

    def start_payment(self) -> dict[str, Any]:
        """Create the QR payment order (journaled); returns the Order with its qr_payload."""
        with self._lock:
            self._expect(S.PAY)
            if self.order is not None and self.order.get("status") == "pending":
                return self.order
            try:
                order = self.payment.create(self.amount_fen, self.item.name_en)
            except KioskError as err:
                self._fail(err)
                raise
            self._pay_deadline = self.engine.clock() + self.engine.payment_timeout_s
            self._save_resume()
            return order

    def poll_payment(self) -> dict[str, Any]:
        """Ask the backend about the order; paid moves on to produce; past the timeout it is cancelled."""
        with self._lock:
            self._expect(S.PAY)
            if self.order is None:
                raise StepError("no payment order yet: call start_payment first")
            order = self.payment.poll()
            if order["status"] == "paid":
                self.payment.record_paid(order)
                self._advance()
            elif order["status"] in ("cancelled", "expired"):
                err = PaymentTimeout(f"order {order['status']}")
                self._end(Outcome.FAILED, err.code, err)
            elif self.engine.clock() > self._pay_deadline:
                order = self._cancel_order(timeout=True)
            return order

    def cancel_payment(self) -> dict[str, Any] | None:
        """Cancel the open order; when it turns out paid already, move on to produce instead."""
        with self._lock:
            self._expect(S.PAY)
            if self.order is None:
                self._end(Outcome.CANCELLED, "cancelled")
                return None
            return self._cancel_order(timeout=False)

    def _cancel_order(self, *, timeout: bool) -> dict[str, Any]:
        try:
            order = self.payment.cancel()
        except KioskError as err:  # the order may still be paid later: recovery's reconcile settles it
            self._fail(err)
            raise
        if order["status"] == "paid":  # paid between the last poll and the cancel
            self._advance()
        elif timeout:
            err = PaymentTimeout(f"order {order['order_id']} not paid in time")
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
        if self.item.kind == "guide" or not self.item.operation:
            display = tuple(form.guide_lines(self.item))
            self.session.display = list(display)
            return Produced(display=display)
        result = self._operate()
        self.session.display = list(result.get("display") or ())
        self.session.documents.extend([result["document"]] if result.get("document") else [])
        produced, err = self.engine.printing.deliver(self._print_context(), result)
        if err is not None:
            self.error, self.reason = err, err.code
        return produced

    def _print_context(self) -> PrintContext:
        paid = self.amount_fen if self.payment.paid else 0
        return PrintContext(self.ref, self.item, self.session, paid, self.payment.order_id if paid else "")

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
                self._slip = self.engine.printing.print_slip(self._print_context(), produced.reference,
                                                             produced.display)
                log.info("txn=%s item=%s slip printed on request", self.id, self.item.id)
            return self._slip

    @property
    def kiosk_reference(self) -> str:
        """The number the resident is given when the outcome of the operation is unknown."""
        return kiosk_reference(self.engine.terminal_id, self.id)

    def _operate(self) -> dict[str, Any]:
        order_id = self.payment.order_id if self.payment.paid else ""
        self._save_resume(order_id=order_id)
        return run_operation(self.engine, self.ref, self.item, id_number=self.session.id_number or None,
                             fields=self.form_values, order_id=order_id, session_id=self.session.id)

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
            if self.step is S.PAY and self.order is not None and not self.payment.paid:
                try:
                    self._cancel_order(timeout=False)
                except KioskError:
                    pass  # journaled; recovery settles the order
                if self.outcome is not None:
                    if self.outcome is Outcome.CANCELLED:
                        self.reason = why
                    return
            if self.payment.paid:
                self._produce_unattended()
                return
            self._end(Outcome.CANCELLED, why)

    def _produce_unattended(self) -> None:
        try:
            self._operate()
        except KioskError as err:  # journaled, and what could not be delivered was refunded
            self._fail(err)
            return
        owe_prints(self.engine.journal, self.ref, self.item, code="resident_left")
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
            self.engine.forget(self)

