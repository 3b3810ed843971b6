"""The simulator's static route for the demo: a TUF repository folder served as-is at ``/updates/``.

A repository is static files (``metadata/``, ``targets/``), so the route only hands out
files; what makes them trustworthy is their signatures, checked by the kiosk's TUF client.
Served over plain HTTP in the demo profile; with ``--tls`` the API listener asks for a
client certificate, which the TUF client does not present.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_from_directory

UPDATES_PREFIX = "/updates"


def register(app: Flask, folder: str | None) -> None:
    """Serve ``folder`` under ``/updates/`` (nothing is registered without a folder)."""
    if not folder:
        return
    root = Path(folder).resolve()

    def update_file(path: str) -> Response:
        # send_from_directory joins safely: '..' or an absolute path is a 404, never a file outside
        return send_from_directory(root, path, max_age=0)

    app.add_url_rule(f"{UPDATES_PREFIX}/<path:path>", "update_repo", update_file, methods=["GET"])
