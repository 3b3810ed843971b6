"""The e-Jingtong backend simulator: the documented API on a real HTTP server, with SQLite.

``serve(host, port, db_path=None, faults=None) -> SimServer`` starts it in a thread;
``kiosk backend-sim`` runs it in the foreground. Operations register themselves in
:mod:`kiosk.backend_sim.registry`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["serve", "SimServer"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing the registry from an operation module does not pull in Flask.
    if name in ("serve", "SimServer"):
        from kiosk.backend_sim import server

        return getattr(server, name)
    raise AttributeError(name)
