"""Camera for the face check (人证核验): the interface."""
from __future__ import annotations

import abc

from kiosk.hardware.base import Device


class Camera(Device):
    """Captures one still image of the person at the screen."""

    kind = "camera"

    @abc.abstractmethod
    def capture(self, timeout: float = 5.0) -> bytes:
        """Capture one frame as JPEG bytes. Raises DeviceTimeout, DeviceOffline."""
