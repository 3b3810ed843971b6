"""Reading receipts back: outside bytes never make the decoder (or the hardware's tokenizer under it) raise,
the tokenizer streams correctly, the preview draws the paper, and the reader's CLI reads saved jobs."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from kiosk.hardware.escpos_stream import tokenize
from print_templates.escpos_decode import decode
from print_templates.receipts import render_receipt

COMMANDISH = st.lists(st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"\x1b@", b"\x1c&", b"\x1c.", b"\x1dVA\x03", b"\x10\x04\x01", b"\x1d(k", b"\x1dv0\x00",
                     b"\x1b*", b"\x1dk", b"\x1bD", b"\n", "中文，".encode("gb18030")]),
), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), COMMANDISH))
def test_any_bytes_decode_without_raising(data: bytes) -> None:
    out = decode(data)
    assert all("\n" not in line for line in out.lines)
    assert out.cuts == sum(1 for tok in tokenize(data) if tok.name == "GS V")
    for img in out.images:
        assert img.height == len(img.rows)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), COMMANDISH), st.integers(min_value=1, max_value=17))
def test_streaming_in_chunks_finds_the_same_tokens(data: bytes, chunk: int) -> None:
    whole = [(t.kind, t.name, data[t.start:t.end]) for t in tokenize(data)]
    streamed, pending = [], b""
    for i in range(0, len(data), chunk):
        pending += data[i:i + chunk]
        consumed = 0
        for tok in tokenize(pending, final=False):
            streamed.append((tok.kind, tok.name, pending[tok.start:tok.end]))
            consumed = tok.end
        pending = pending[consumed:]
    streamed += [(t.kind, t.name, pending[t.start:t.end]) for t in tokenize(pending)]
    # text runs may be split at chunk borders; compare the bytes and the commands
    assert b"".join(b for _, _, b in streamed) == b"".join(b for _, _, b in whole)
    assert [(k, n) for k, n, _ in streamed if k != "text"] == [(k, n) for k, n, _ in whole if k != "text"]


def test_truncated_command_is_reported_not_raised() -> None:
    out = decode(b"abc\n\x1dv0\x00\x10\x00\x05")
    assert out.lines == ("abc",)
    assert out.problems and "truncated" in out.problems[0]


def test_text_outside_chinese_mode_is_not_mistaken_for_chinese() -> None:
    out = decode("户籍".encode("gb18030") + b"\n")
    assert out.lines[0] != "户籍" and not out.chinese_mode_used
    out = decode(b"\x1c&" + "户籍".encode("gb18030") + b"\x1c.\n")
    assert out.lines == ("户籍",) and out.chinese_mode_used


def test_status_queries_are_counted_and_do_not_print() -> None:
    receipt = render_receipt("test", {"terminal_id": "T1", "time": "2026-11-29 12:00:00"})
    out = decode(b"\x10\x04\x01\x10\x04\x04" + receipt)
    assert out.status_queries == (1, 4)
    assert out.lines[0] == "济南公安 24小时智慧警局"


def test_preview_draws_every_element_on_paper_width() -> None:
    from print_templates.escpos_decode import preview

    receipt = decode(render_receipt("test", {"terminal_id": "T1", "time": "2026-11-29 12:00:00"}))
    picture = preview(receipt, width_dots=384)
    assert picture.width == 384
    texts = sum(1 for kind, _ in receipt.elements if kind == "text")
    assert picture.height >= texts * 28 + 16  # every line and the cut mark
    assert picture.convert("L").getextrema()[0] == 0  # something is printed


def test_reader_cli_prints_a_saved_job_and_draws_it(tmp_path: Path, capsys) -> None:
    from print_templates.escpos_decode import main

    job = tmp_path / "receipt-0001.bin"
    job.write_bytes(render_receipt("test", {"terminal_id": "T1", "time": "2026-11-29 12:00:00"}))
    assert main([str(job), "--png", str(tmp_path / "png")]) == 0
    out = capsys.readouterr().out
    assert "济南公安 24小时智慧警局" in out and "1 cuts" in out
    assert (tmp_path / "png" / "receipt-0001.png").stat().st_size > 0
