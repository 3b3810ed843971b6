"""Kivy's evdev input providers made again on the node of a touch screen that came back.

Kivy's hidinput and mtdev providers need a real evdev node to run, which this machine does
not have; the test gives the event loop providers of its own class (as probesysfs would
have made them at start) and checks what ``reattach`` stops, removes, makes and starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.base import EventLoopBase
from kivy.input.provider import MotionEventProvider

from kiosk.touch_input import reattach


class ReadsANode(MotionEventProvider):
    """Stands in for hidinput/mtdev: a provider with the node it reads in ``input_fn``."""

    def __init__(self, device: str, args: str) -> None:
        super().__init__(device, args)
        self.input_fn = args.split(",")[0]
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


class Mouse(MotionEventProvider):
    """A provider that reads no node (the mouse): never touched."""


def test_the_dead_touch_provider_is_replaced_by_one_on_the_new_node(tmp_path: Path) -> None:
    loop: Any = EventLoopBase()
    keypad_node = tmp_path / "event2"
    keypad_node.write_bytes(b"")  # still there: its provider is left alone
    gone = ReadsANode("event5", str(tmp_path / "event5") + ",max_position_x=4096")  # unplugged: the node is gone
    keypad = ReadsANode("event2", str(keypad_node))
    mouse = Mouse("mouse", "")
    for provider in (gone, keypad, mouse):
        loop.add_input_provider(provider)
    new_node = str(tmp_path / "event7")
    made = reattach(new_node, loop)
    assert len(made) == 1 and type(made[0]) is ReadsANode
    assert made[0].input_fn == new_node and made[0].device == "event5" and made[0].started
    assert gone.stopped and gone not in loop.input_providers
    assert loop.input_providers == [keypad, mouse, made[0]] and not keypad.stopped


def test_the_same_node_back_after_a_power_cycle_gets_a_fresh_provider(tmp_path: Path) -> None:
    loop: Any = EventLoopBase()
    node = tmp_path / "event5"
    node.write_bytes(b"")  # the controller came back under the same number; the old thread ended on ENODEV
    old = ReadsANode("event5", str(node))
    loop.add_input_provider(old)
    made = reattach(str(node), loop)
    assert old.stopped and loop.input_providers == made and made[0] is not old and made[0].started


def test_touches_through_the_window_system_leave_the_providers_alone(tmp_path: Path) -> None:
    loop: Any = EventLoopBase()
    mouse = Mouse("mouse", "")
    loop.add_input_provider(mouse)
    assert reattach(str(tmp_path / "event5"), loop) == [] and loop.input_providers == [mouse]
