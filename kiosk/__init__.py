"""Software for 24-hour self-service police kiosks."""
import sys as _sys

__version__ = "0.1.0"


def _one_ast_parse_at_a_time() -> None:
    """Serialize ``ast.parse`` on CPython 3.11, whose AST conversion keeps its recursion-depth check in
    interpreter-wide state: two threads parsing at once can fail with "SystemError: AST constructor recursion
    depth mismatch" (seen here: two backend simulators built in two threads, werkzeug compiling their routes).
    The kiosk parses in two threads at once too: Kivy's kv rules on the UI thread while the embedded simulator
    builds in its own. CPython 3.12 keeps that state per call."""
    import ast
    import functools
    import threading

    if getattr(ast.parse, "_kiosk_locked", False):
        return
    parse, lock = ast.parse, threading.RLock()

    @functools.wraps(parse)
    def locked(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            return parse(*args, **kwargs)
    locked._kiosk_locked = True  # type: ignore[attr-defined]
    ast.parse = locked


if _sys.version_info < (3, 12):
    _one_ast_parse_at_a_time()
