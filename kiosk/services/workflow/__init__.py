"""The workflow: one resident's transaction as a declared state machine, and what it leaves behind.

Every item runs through the same steps, identify → face → form → confirm → pay → produce
→ done, and its kind chooses which of them it visits (``steps``: as in Electrum's wizard
navmap, each kind declares for each step where it goes ``next`` and which step is ``last``).
The screens call one method per step on a :class:`~kiosk.services.workflow.transaction.Transaction`;
nothing here knows of Kivy.

Every side effect (the backend operation, payment order create/cancel/refund, the payment
arriving, each print job) is journaled before and after it happens, keyed by its
idempotency key, so ``recovery`` can resume or compensate after a crash: never charge
twice, never lose an issued document. A printer failure leaves the document issued and
journaled; reading the same ID card again offers it for reprint.

An operation whose answer is lost is never taken for failed: it is asked again under its
key until ``backend.unknown_outcome_s``, then the transaction ends ``failed`` with reason
``outcome_unknown`` and the resident gets a reference number; the journal keeps the
operation open until recovery (or the running kiosk's reconciler) learns from the backend
what became of it, prints the slip of what was issued, or refunds what was paid when the
backend confirms the operation did not happen. A refund is asked for on no other grounds.

Personal data lives only in the transaction's :class:`~kiosk.services.session.Session`.

The files: ``steps`` (the step map per kind), ``rules`` (the kiosk's own refusals),
``records`` (what crosses to the screens and listeners), ``transaction`` (one resident doing
one item), ``form``, ``reading``, ``payment``, ``operation`` and ``production`` (what a step
does: the form, the card read, the order, the backend operation, the prints), ``reprint``
(what a card's holder is owed), ``recovery`` (start-up and the running kiosk's settling of
what was left half done) and ``engine`` (starts transactions, owns what they share).
"""
