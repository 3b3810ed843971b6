"""Where the kiosk keeps what it derives from its data files between runs (the pinyin index, the catalog's copy)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$KIOSK_CACHE_DIR, else the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``) / police-kiosk."""
    if os.environ.get("KIOSK_CACHE_DIR"):
        return Path(os.environ["KIOSK_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "police-kiosk"
