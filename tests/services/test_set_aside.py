"""Survivors of home's tidy set aside from the automatic garbage collections (kiosk.services.heap.set_aside).

A full automatic collection walks every tracked object (about 340,000 in the kiosk once started, 140-300 ms): set
aside at rest, the survivors are skipped until the next tidy, which takes them all back first, so cyclic garbage
among them is still found and no census of live objects misses them.
"""
from __future__ import annotations

import gc
import weakref
from typing import Iterator

import pytest

from kiosk.services import heap


class Node:
    """A weak-referenceable object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def taken_back() -> Iterator[None]:
    """Nothing this test sets aside stays hidden from the tests after it."""
    yield
    gc.unfreeze()


def _in_a_generation(obj: object) -> bool:
    return any(any(o is obj for o in gc.get_objects(generation)) for generation in range(3))


def test_a_tidy_with_freeze_sets_the_survivors_aside() -> None:
    survivor = Node()
    assert _in_a_generation(survivor)
    heap.tidy(freeze=True)
    assert gc.get_freeze_count() > 0
    assert not _in_a_generation(survivor)  # an automatic collection of any generation no longer walks it
    heap.tidy()
    assert gc.get_freeze_count() == 0  # a tidy without freeze leaves nothing aside
    assert _in_a_generation(survivor)


def test_cyclic_garbage_set_aside_is_collected_by_the_next_tidy() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    heap.tidy(freeze=True)
    del first, second
    gc.collect()
    assert gone() is not None  # set aside, a cycle is not collected (what an unfreeze-less tidy would leave)
    heap.tidy(freeze=True)
    assert gone() is None  # the tidy took everything back first and found the cycle


def test_set_aside_objects_are_freed_with_their_last_reference() -> None:
    node = Node()
    gone = weakref.ref(node)
    heap.tidy(freeze=True)
    del node
    assert gone() is None  # reference counting frees it as ever: only the cycle search skips it


def test_the_soaks_census_counts_objects_set_aside() -> None:
    from kiosk.soak.sampler import tracked_objects

    survivor = Node()
    heap.tidy(freeze=True)
    assert not any(o is survivor for o in gc.get_objects())
    assert any(o is survivor for o in tracked_objects())
    assert gc.get_freeze_count() == 0
