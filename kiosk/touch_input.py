"""Kivy's side of a touch screen that came back: its evdev input provider made again on the new node.

On Linux, Kivy's default input config (``probesysfs``) looks for touch screens once, at
start, and gives each an ``mtdev`` or ``hidinput`` provider whose reader thread opens
``/dev/input/eventN``. Unplugged, that thread ends on ENODEV and nothing makes it again;
after a controller power cycle the node may even have another number. When the touch
supervisor (kiosk.services.touch_supervisor) sees the screen back, :func:`reattach` drops
every such provider whose node is gone or is the returning one, and starts a new one of the
same kind on the new node. Where touches reach the app through the window system instead
(SDL under the cage compositor, whose libinput follows hotplug itself) there is no such
provider and nothing is done.
"""
from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def _evdev_providers(loop: Any) -> list[Any]:
    """Kivy's providers that read an evdev node themselves (hidinput, mtdev: they carry ``input_fn``)."""
    return [p for p in loop.input_providers if isinstance(getattr(p, "input_fn", None), str)]


def reattach(path: str, loop: Any = None) -> list[Any]:
    """Replace the stale evdev providers by ones reading ``path``; the new providers (none when Kivy reads no node)."""
    if loop is None:
        from kivy.base import EventLoop

        loop = EventLoop
    stale = [p for p in _evdev_providers(loop) if p.input_fn == path or not os.path.exists(p.input_fn)]
    made: list[Any] = []
    for kind in {type(p) for p in stale}:
        olds = [p for p in stale if type(p) is kind]
        for old in olds:
            try:
                old.stop()
            except Exception:  # its thread already ended on ENODEV: nothing to stop
                pass
            loop.remove_input_provider(old)
        new = kind(olds[0].device, path)  # probesysfs' extra options are not kept: the kiosk sets none
        new.start()
        loop.add_input_provider(new)
        made.append(new)
        log.warning("touch input: %s provider %s re-created on %s", kind.__name__, olds[0].device, path)
    if not stale:
        log.info("touch input: no Kivy evdev provider to re-create (touches come through the window system)")
    return made
