"""Out of service: nothing can be served right now; the kiosk comes back by itself."""
from __future__ import annotations

from kiosk.screens.base import KioskScreen


class OutOfServiceScreen(KioskScreen):
    """No buttons but the language switch; the shell leaves this screen when services return."""


SCREEN = OutOfServiceScreen
