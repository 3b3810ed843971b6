"""One resident doing one item: the Transaction, whose methods the screens call one per step."""
from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import (BackendError, BackendRefused, BackendRejected, FieldError, KioskError, MrzUnreadable,
                          NoDevice, OutcomeUnknown, PaymentTimeout, DeviceProtocolError, DeviceTimeout)
from kiosk.hardware.idcard import IdentityCard
from kiosk.services import journal as J
from kiosk.services.session import EndReason, Session
from kiosk.services.workflow.records import (PAID_UNDELIVERED, UNKNOWN, FaceResult, PendingReprint, Produced,
                                             kiosk_reference)
from kiosk.services.workflow.rules import _RETRYABLE_READ, FACE_TRIES, Refused, refusal
from kiosk.services.workflow.steps import NAVMAP, KindPath, Outcome, S, Step, StepError, TransactionClosed, _first

if TYPE_CHECKING:
    from kiosk.services.face.step import FaceOutcome
    from kiosk.services.workflow.engine import WorkflowEngine

log = logging.getLogger(__name__)


def _fen(fee_cny: float | None) -> int:
    return int(round((fee_cny or 0) * 100))




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
        from kiosk.services.workflow.recovery import RecoveryAction, _owe_prints

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

