"""The soak's plan: seeded, 5% of sessions faulted, every fault kind planned on an item it can reach."""
from __future__ import annotations

import random

import pytest

from kiosk.services.catalog import Catalog
from kiosk.soak import plan as P


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load()


@pytest.fixture(scope="module")
def items(catalog):
    return catalog.items


def test_a_short_run_plans_every_fault_kind_once_on_an_item_it_reaches(items):
    plans = P.plan_sessions(items, 12, seed=3)
    assert P.planned_kinds(plans) == {kind: 1 for kind in P.FAULT_KINDS}
    by_id = {item.id: item for item in items}
    for plan in plans:
        if plan.fault:
            assert P.FAULT_REACHES[plan.fault](by_id[plan.item]), plan
            assert plan.behaviour == "normal"


def test_five_percent_of_a_long_run_meet_a_fault_and_every_kind_repeats(items):
    plans = P.plan_sessions(items, 1000, seed=18)
    counts = P.planned_kinds(plans)
    assert sum(counts.values()) == 50
    assert set(counts) == set(P.FAULT_KINDS)
    assert min(counts.values()) >= 1


def test_the_same_seed_gives_the_same_soak_and_another_seed_another(items):
    assert P.plan_sessions(items, 200, seed=5) == P.plan_sessions(items, 200, seed=5)
    assert P.plan_sessions(items, 200, seed=5) != P.plan_sessions(items, 200, seed=6)


def test_the_mix_has_flagships_every_behaviour_and_fitting_scripts(catalog, items):
    flagships = catalog.home_item_ids  # the station's home tiles
    assert len(flagships) >= 2
    plans = P.plan_sessions(items, 1000, seed=18, flagships=flagships)
    flagship = sum(plan.item in flagships for plan in plans)
    assert 250 < flagship < 420  # a third, give or take the dice
    without = P.plan_sessions(items, 1000, seed=18)  # no flagships: every item as likely as any other
    assert sum(plan.item in flagships for plan in without) < 150
    assert {plan.behaviour for plan in plans} == set(P.BEHAVIOURS)
    by_id = {item.id: item for item in items}
    for plan in plans:
        item = by_id[plan.item]
        if plan.behaviour == "mistype":
            (name, value), = plan.values
            assert value == P.MISTYPED[next(f.type for f in item.fields if f.name == name)]
        if plan.behaviour in ("walk_away", "help", "cancel"):
            assert plan.screen == P.first_screen(item)
        else:
            assert plan.screen == ""


def test_the_engine_soak_plans_every_kind_but_the_pcscd_restart(items):
    plans = P.plan_sessions(items, 300, seed=1, kinds=P.ENGINE_FAULT_KINDS, behaviours=P.ENGINE_BEHAVIOURS)
    assert set(P.planned_kinds(plans)) == set(P.FAULT_KINDS) - {"pcscd_restart"}
    assert {plan.behaviour for plan in plans} <= set(P.ENGINE_BEHAVIOURS)


def test_a_kind_that_reaches_no_item_is_refused(items):
    guides = [item for item in items if item.kind == "guide"]
    with pytest.raises(ValueError, match="answer_lost"):
        P.plan_sessions(guides, 20, seed=1, kinds=("answer_lost",))


def test_with_a_tour_the_warmup_does_every_item_once_by_its_whole_way_then_every_behaviour_once(items):
    assert P.tours(items, 1000, 100) and not P.tours(items, 100, 100) and not P.tours(items, 1000, 60)
    assert not P.tours(items, 1000, 100, kinds=P.FAULT_KINDS * 3)  # no room for them all
    flagships = ["H01", "S01", "T02"]
    plans = P.plan_sessions(items, 1000, seed=18, flagships=flagships, tour=100)
    by_id = {item.id: item for item in items}
    behaving_count = len(P._tour_visits(items, P.BEHAVIOURS, random.Random(0))) - len(items)
    touring = [p for p in plans if not p.fault][:len(items) + behaving_count]
    visits, behaving = touring[:len(items)], touring[len(items):]
    assert sorted(p.item for p in visits) == sorted(item.id for item in items)  # each once, none twice
    assert all(p.behaviour == "normal" for p in visits)
    # Every other behaviour, care mode's own type among them, before the fit starts; those that act on one screen
    # once from each screen they can start on.
    assert {p.behaviour for p in behaving} == set(P.BEHAVIOURS) - {"normal"}
    for behaviour in P.SCREEN_BEHAVIOURS:
        fitting = {P.first_screen(item) for item in items if P.BEHAVIOUR_FITS[behaviour](item)}
        assert sorted(p.screen for p in behaving if p.behaviour == behaviour) == sorted(fitting)
    assert all(P.BEHAVIOUR_FITS[p.behaviour](by_id[p.item]) for p in behaving)
    assert all(p.values for p in behaving if p.behaviour == "mistype")
    assert touring[-1].index < 100  # within the warm-up, faults and all
    after = [p for p in plans if not p.fault and p.index > touring[-1].index]
    share = sum(p.item in flagships for p in after) / len(after)
    assert 0.28 < share < 0.40  # the mix as before once the tour is done
    assert {p.behaviour for p in after} == set(P.BEHAVIOURS)
    assert P.plan_sessions(items, 1000, seed=18, flagships=flagships, tour=100) == plans


def test_with_a_tour_every_fault_kind_is_met_once_in_the_warmup_and_repeats_after_it(items):
    # The first handling of a fault is a one-time cost like a first visit: paid before RSS is fitted.
    plans = P.plan_sessions(items, 1000, seed=18, tour=100)
    warmup = [p.fault for p in plans[:100] if p.fault]
    assert sorted(warmup) == sorted(P.FAULT_KINDS)  # each once
    assert sum(P.planned_kinds(plans).values()) == 50  # still 5% of the sessions
    assert len({p.fault for p in plans[100:] if p.fault}) > 5  # the repeats, spread over the rest
    engine = P.plan_sessions(items, 10000, seed=18, kinds=P.ENGINE_FAULT_KINDS, behaviours=P.ENGINE_BEHAVIOURS,
                             tour=100)
    assert sorted(p.fault for p in engine[:100] if p.fault) == sorted(P.ENGINE_FAULT_KINDS)
    with pytest.raises(ValueError, match="no room"):
        P.plan_sessions(items, 1000, seed=18, tour=5)
