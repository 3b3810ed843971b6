"""Help text shared by `kiosk` and `kiosk-provision`: defaults on every flag, an example under each command."""
from __future__ import annotations

import argparse
from typing import Iterator


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps epilogs as written (the examples) and appends a flag's default when its help does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default in (None, False, argparse.SUPPRESS, [], "")
                or "default" in text or "%(default)" in text):
            return text
        return f"{text} (default: %(default)s)"


def example(*lines: str) -> str:
    """The epilog of a command: its examples, last in its help."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines) + "\n"


def subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command path, parser) below ``parser``, depth first (for tests and help checks)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subparsers(sub, (*path, name))


def version_string(prog: str) -> str:
    """`PROG --version`: the package version and where it runs from."""
    from pathlib import Path

    import kiosk

    return f"{prog} {kiosk.__version__} ({Path(kiosk.__file__).resolve().parent.parent})"
