"""The steps a transaction can visit and, per kind of item, the path through them (data, as a navmap)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping

from kiosk.errors import KioskError
from kiosk.services.catalog import CatalogItem


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


def applies(step: Step, item: CatalogItem, amount_fen: int) -> bool:
    """Whether ``step`` is visited for ``item`` given what is known so far (the amount to pay)."""
    if step is S.IDENTIFY:
        return item.needs_identity
    if step is S.FACE:
        return item.identity == "id_card_and_face"
    if step is S.FORM:
        return bool(item.fields)
    if step is S.PAY:
        return amount_fen > 0
    return True


def first_applicable(candidates: Iterable[Step], item: CatalogItem, amount_fen: int) -> Step:
    """The first of ``candidates`` that applies (a step's ``next``, a path's ``start``); DONE when none does."""
    for step in candidates:
        if applies(step, item, amount_fen):
            return step
    return S.DONE


# --- a step method called out of order (a screen's bug) --------------------------------
class StepError(KioskError):
    """A step method was called out of order (a screen bug, not the resident's)."""

    code = "wrong_step"


class TransactionClosed(StepError):
    """The transaction already ended."""

    code = "transaction_closed"
