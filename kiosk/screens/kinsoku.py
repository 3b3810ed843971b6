"""Chinese line breaking: a wrapped line never starts with a closing mark (。，、；：？！ and closing brackets) and
never ends with an opening bracket.

Kivy wraps text that has no spaces at whatever character reaches the edge, so a sentence whose full stop
falls just past it ends on a line of its own ("…请联系工作人员" / "。"): in care mode's large type on the
form's error lines and elsewhere. Chinese typesetting (GB/T 15834, and the 禁则 of every CJK typesetter)
keeps such a mark with the character before it (and an opening bracket with the one after: a title broke as
"机动车检验标志申领（" / "六年免检）"); the usual way, and the one taken here, is to carry the character down.

:func:`install` wraps the layout function Kivy's labels call (``kivy.core.text.layout_text``): after Kivy
has laid a plain label's text out at its width, a soft-wrapped line that starts with a closing mark makes
it lay the text out again with a break before the previous line's last character; a soft-wrapped line that
ends with an opening bracket, with a break before that bracket. The label's ``text``
stays as it was; only the drawing changes. Markup labels (laid out piece by piece) are left to Kivy.
"""
from __future__ import annotations

from typing import Any, Callable

# Marks that may not begin a line (full-width and the ASCII ones that end a phrase in mixed text).
CLOSING = frozenset("。，、；：？！…—）」』》〉】〕”’%．,.;:?!)]}")
OPENING = frozenset("（「『《〈【〔“‘([{")
MAX_PASSES = 4  # each pass mends one line; a paragraph needing more keeps Kivy's own breaks for the rest

_original: Callable[..., Any] | None = None


def line_texts(lines: list[Any]) -> list[str]:
    """The text of each laid-out line (its words joined)."""
    return ["".join(word.text for word in line.words) for line in lines]


def mend(text: str, lines: list[Any]) -> str | None:
    """``text`` with one break added, for the first soft-wrapped line of ``lines`` (as Kivy laid ``text`` out)
    that starts with a closing mark (the previous character carried down with it) or ends with an opening
    bracket (carried down to what it opens); None when no line needs it, or when the lines cannot be matched
    to the text."""
    pos = 0
    starts = []
    for line_text in line_texts(lines):
        found = text.find(line_text, pos) if line_text else pos
        if found < 0:
            return None
        starts.append(found)
        pos = found + len(line_text)
    texts = line_texts(lines)
    for i in range(1, len(lines)):
        if lines[i - 1].is_last_line:  # a hard break (a new paragraph) is the author's
            continue
        if texts[i][:1] in CLOSING:
            cut = starts[i] - 1  # the previous line's last character goes down with the mark
        elif texts[i - 1][-1:] in OPENING:
            cut = starts[i - 1] + len(texts[i - 1]) - 1  # the bracket goes down to what it opens
        else:
            continue
        if cut <= starts[i - 1] or text[cut].isspace() or text[cut] in CLOSING:
            continue  # a one-character line, a space, or a run of marks: nothing to carry down
        return text[:cut] + "\n" + text[cut:]
    return None


def _layout_text(text: str, lines: list[Any], size: Any, text_size: Any, options: Any, get_extents: Any,
                 append_down: bool, complete: bool) -> Any:
    assert _original is not None
    result = _original(text, lines, size, text_size, options, get_extents, append_down, complete)
    # Only a whole plain text laid out from nothing at a set width (LabelBase.render's common case); markup,
    # laid out piece by piece onto lines already there, is Kivy's as it was.
    if lines is None or not complete or tuple(size) != (0, 0) or not text_size[0]:
        return result
    for _ in range(MAX_PASSES):
        mended = mend(text, lines)
        if mended is None:
            break
        laid: list[Any] = []
        again = _original(mended, laid, size, text_size, options, get_extents, append_down, complete)
        lines[:] = laid
        text, result = mended, again
    return result


def install() -> None:
    """Make Kivy's labels keep closing marks off the start of a wrapped line (once per process)."""
    global _original
    import kivy.core.text as core_text

    if _original is not None:
        return
    _original = core_text.layout_text
    core_text.layout_text = _layout_text
