"""The soak's sessions, planned up front from one seed: which item, how the resident behaves, which fault.

The flagship items (the station's home tiles, ``runtime.home_items``: the household certificate,
the no-criminal-record certificate and the traffic fine in the demo catalog) take a third of the
sessions, the rest is a random mix of the other items. Residents walk away, cancel, mistype, call for help, use
the keypad or care mode, or simply do the item. With a ``tour`` (the warm-up's length in sessions), the first
sessions that meet no fault do each item once, in a shuffled order and by its whole way (behaviour normal), then
each other behaviour once on an item it fits (walking away, calling for help and cancelling once from each screen
they can start on), and every fault kind is met once within the warm-up: a warm-up that has been everywhere once,
so the one-time costs of a first visit (its screens' first build, its first backend calls, care mode's larger type
opening fonts of its own, the first handling of each fault) are paid before RSS is fitted.
``fault_rate`` of the sessions (at least one per fault kind, every kind before any repeats) meet a fault; such a
session does an item the fault can reach (a receipt to run out of paper on, a card to pull, a travel document for
the restarted pcscd).

Without the faults in the tour, eight of the ten kinds first fired between sessions 120 and 240 of the default UI
soak (seed 18), where the resident set stepped up by 5 to 10 MiB in stop 36's run and again in stop 37's: a
one-time cost after the warm-up, which a line fitted from session 100 reads as growth.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

FLAGSHIP_SHARE = 1 / 3
FAULT_RATE = 0.05

# Every fault kind the soak injects, in the order the report lists them.
BACKEND_FAULTS = {"backend_timeout": "timeout", "backend_5xx": "error", "backend_garbage": "garbage"}
FAULT_KINDS = ("backend_timeout", "backend_5xx", "backend_garbage", "backend_slow", "answer_lost",
               "paper_out_mid_job", "card_pulled_mid_read", "printer_offline", "pcscd_restart",
               "disk_nearly_full")
# The engine-only soak has no PC/SC path (its chip reader is the simulator): every kind but that one.
ENGINE_FAULT_KINDS = tuple(k for k in FAULT_KINDS if k != "pcscd_restart")

# How residents behave, with their weights (the rest of a session's script is the item's happy path).
BEHAVIOURS: dict[str, int] = {"normal": 45, "walk_away": 10, "cancel": 8, "mistype": 7, "help": 7,
                              "keypad": 13, "care": 10}
ENGINE_BEHAVIOURS: dict[str, int] = {"normal": 65, "walk_away": 12, "cancel": 12, "mistype": 11}
# A value each typed field type refuses (too short): what a mistyping resident enters.
MISTYPED = {"phone": "123", "id_number": "1234"}


def _prints_receipt(item: Any) -> bool:
    return "receipt" in set(item.outputs) - ({"slip"} if getattr(item, "slip_on_request", False) else set())


def _transaction(item: Any) -> bool:
    return item.kind != "guide"


# Which items a fault kind can reach.
FAULT_REACHES: dict[str, Callable[[Any], bool]] = {
    "backend_timeout": _transaction, "backend_5xx": _transaction, "backend_garbage": _transaction,
    "backend_slow": _transaction,
    "answer_lost": lambda item: _transaction(item) and bool(item.operation),
    "paper_out_mid_job": lambda item: _transaction(item) and _prints_receipt(item),
    "card_pulled_mid_read": lambda item: item.identity in ("id_card", "id_card_and_face"),
    "printer_offline": lambda item: _transaction(item) and _prints_receipt(item),
    "pcscd_restart": lambda item: item.identity == "travel_document",
    "disk_nearly_full": _transaction,
}


def mistype_field(item: Any) -> tuple[str, str] | None:
    """(field name, a value it refuses) for the first typed field a resident can get wrong, or None."""
    for spec in item.fields:
        if spec.type in MISTYPED:
            return spec.name, MISTYPED[spec.type]
    return None


def first_screen(item: Any) -> str:
    """The first screen of ``item``'s visit where a resident can walk away, call for help or cancel."""
    if item.needs_identity:
        return "identify"
    if item.fields:
        return "form"
    return "done"


BEHAVIOUR_FITS: dict[str, Callable[[Any], bool]] = {
    "normal": lambda item: True, "care": lambda item: True,
    # The keypad has digits and arrows: a resident who cannot see the screen cannot type words (a name) with it.
    "keypad": lambda item: not any(spec.type == "text" for spec in item.fields),
    "walk_away": _transaction, "cancel": lambda item: _transaction(item) and first_screen(item) != "done",
    "help": _transaction, "mistype": lambda item: _transaction(item) and mistype_field(item) is not None,
}


# Behaviours that act on one screen of the visit (first_screen): the tour does each once from every such screen.
SCREEN_BEHAVIOURS = ("walk_away", "help", "cancel")


@dataclass(frozen=True)
class SessionPlan:
    """One planned session: the item, the resident's behaviour, the fault it meets ('' for none)."""

    index: int
    item: str
    behaviour: str = "normal"
    fault: str = ""
    screen: str = ""  # where the resident walks away, calls for help or cancels
    values: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # mistyped FIELD=VALUE


def plan_sessions(items: Sequence[Any], sessions: int, seed: int, *, flagships: Sequence[str] = (),
                  kinds: Sequence[str] = FAULT_KINDS,
                  fault_rate: float = FAULT_RATE, behaviours: dict[str, int] | None = None,
                  tour: int = 0) -> list[SessionPlan]:
    """``sessions`` plans from ``seed``: the same seed gives the same soak. ``flagships`` (item ids, the home
    tiles) take a third of the sessions that meet no fault (after the tour, with ``tour``: each item once first,
    every fault kind once within the first ``tour`` sessions; :func:`tours` says whether it fits).
    Raises ValueError when a fault kind reaches no item of ``items``, or a tour has no room for every kind."""
    rng = random.Random(seed)
    weights = behaviours or BEHAVIOURS
    by_id = {item.id: item for item in items}
    flagship_items = [by_id[i] for i in flagships if i in by_id]
    others = [item for item in items if item.id not in set(flagships)]
    for kind in kinds:
        if not any(FAULT_REACHES[kind](item) for item in items):
            raise ValueError(f"fault {kind} reaches none of the items")
    faulted = _fault_slots(rng, sessions, kinds, fault_rate, first_within=tour)
    visits = _tour_visits(items, weights, rng) if tour else []
    plans = []
    for index in range(sessions):
        kind = faulted.get(index, "")
        if kind:
            item = rng.choice([i for i in items if FAULT_REACHES[kind](i)])
            behaviour = "normal"
        elif visits:
            item, behaviour = visits.pop()
        else:
            pool = (flagship_items if flagship_items and rng.random() < FLAGSHIP_SHARE
                    else others or flagship_items)
            item = rng.choice(pool)
            fitting = [b for b in weights if BEHAVIOUR_FITS[b](item)]
            behaviour = rng.choices(fitting, [weights[b] for b in fitting])[0]
        values: tuple[tuple[str, str], ...] = ()
        if behaviour == "mistype":
            values = (mistype_field(item),)  # type: ignore[assignment]
        screen = first_screen(item) if behaviour in SCREEN_BEHAVIOURS else ""
        plans.append(SessionPlan(index, item.id, behaviour, kind, screen, values))
    return plans


def _tour_visits(items: Sequence[Any], weights: dict[str, int], rng: random.Random) -> list[tuple[Any, str]]:
    """The tour's (item, behaviour) visits, last first (they are popped): every item by its whole way in a shuffled
    order, then each other behaviour on an item it fits, once from each screen it can start on where it acts on
    one (SCREEN_BEHAVIOURS)."""
    visits: list[tuple[Any, str]] = [(item, "normal") for item in items]
    rng.shuffle(visits)
    for behaviour in (b for b in weights if b != "normal"):
        fitting = [item for item in items if BEHAVIOUR_FITS[behaviour](item)]
        if behaviour in SCREEN_BEHAVIOURS:
            screens = sorted({first_screen(item) for item in fitting})
            visits += [(rng.choice([i for i in fitting if first_screen(i) == screen]), behaviour) for screen in screens]
        elif fitting:
            visits.append((rng.choice(fitting), behaviour))
    visits.reverse()
    return visits


def tours(items: Sequence[Any], sessions: int, warmup: int, behaviours: dict[str, int] | None = None,
          kinds: Sequence[str] = FAULT_KINDS) -> bool:
    """Whether a soak's plan starts with the tour of every item, behaviour and fault kind: when the warm-up holds
    the tour's visits and a session for each fault kind, and RSS is fitted after it (more sessions than the
    warm-up)."""
    visits = _tour_visits(items, behaviours or BEHAVIOURS, random.Random(0))
    return sessions > warmup and warmup >= len(visits) + len(kinds)


def _fault_slots(rng: random.Random, sessions: int, kinds: Sequence[str], rate: float, *,
                 first_within: int = 0) -> dict[int, str]:
    """Which sessions meet which fault: ``rate`` of them, at least one per kind, every kind before repeats; with
    ``first_within``, every kind once among the first ``first_within`` sessions and the repeats after them."""
    if not kinds:
        return {}
    wanted = min(sessions, max(len(kinds), round(sessions * rate)))
    order = list(kinds)
    if first_within:
        if not len(kinds) <= first_within <= sessions:
            raise ValueError(f"a tour of {first_within} sessions in {sessions} has no room for {len(kinds)} faults")
        first = sorted(rng.sample(range(first_within), len(kinds)))
        rng.shuffle(order)
        later = range(first_within, sessions)
        repeats = sorted(rng.sample(later, min(len(later), wanted - len(kinds))))
        return {**dict(zip(first, order)), **{slot: rng.choice(order) for slot in repeats}}
    slots = sorted(rng.sample(range(sessions), wanted))
    rng.shuffle(order)
    assigned = order[:wanted] + [rng.choice(list(kinds)) for _ in range(wanted - len(order))]
    rng.shuffle(assigned)
    return dict(zip(slots, assigned))


def planned_kinds(plans: Iterable[SessionPlan]) -> dict[str, int]:
    """How many sessions each fault kind is planned for."""
    counts: dict[str, int] = {}
    for plan in plans:
        if plan.fault:
            counts[plan.fault] = counts.get(plan.fault, 0) + 1
    return counts
