"""OpenCvCamera against an image-sequence source (OpenCV's own reader; no webcam needed)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from kiosk.errors import NoDevice
from kiosk.hardware.camera_opencv import OpenCvCamera


@pytest.fixture
def frames(tmp_path):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    for i, colour in enumerate(colours):
        Image.new("RGB", (64, 48), colour).save(tmp_path / f"frame_{i:03d}.png")
    return tmp_path / "frame_%03d.png", colours


def _colour(jpeg: bytes) -> tuple[int, int, int]:
    img = Image.open(io.BytesIO(jpeg))
    assert img.format == "JPEG"
    return img.convert("RGB").getpixel((32, 24))


def _near(a, b) -> bool:
    return all(abs(x - y) <= 12 for x, y in zip(a, b))


def test_captures_jpeg_frames_in_order_and_rewinds(frames):
    pattern, colours = frames
    camera = OpenCvCamera("camera", {"device": str(pattern), "warmup": 0})
    got = [_colour(camera.capture(timeout=2)) for _ in range(4)]
    assert [_near(g, c) for g, c in zip(got, colours + [colours[0]])] == [True] * 4
    assert Image.open(io.BytesIO(camera.capture())).size == (64, 48)
    assert camera.status().state.value == "online"
    camera.close()
    camera.close()


def test_warmup_drops_frames(frames):
    pattern, colours = frames
    camera = OpenCvCamera("camera", {"device": str(pattern), "warmup": 2})
    assert _near(_colour(camera.capture(timeout=2)), colours[2])
    camera.close()


def test_missing_source_is_no_device(tmp_path):
    camera = OpenCvCamera("camera", {"device": str(tmp_path / "none_%03d.png")})
    with pytest.raises(NoDevice):
        camera.capture(timeout=0.2)
    assert camera.status().state.value == "no_device"


def test_read_frame_gives_rgb_in_order(frames):
    pattern, colours = frames
    camera = OpenCvCamera("camera", {"device": str(pattern), "warmup": 0})
    got = [camera.read_frame(timeout=2) for _ in range(3)]
    assert [f.seq for f in got] == [1, 2, 3]
    assert [_near(tuple(int(v) for v in f.pixels[24, 32]), c) for f, c in zip(got, colours)] == [True] * 3
    assert (got[0].width, got[0].height) == (64, 48)
    camera.close()


def test_stream_serves_new_frames_and_stops(frames):
    pattern, _ = frames
    camera = OpenCvCamera("camera", {"device": str(pattern), "warmup": 0, "fps": 50})
    camera.start_stream()
    try:
        first = camera.next_frame(-1, timeout=5)
        second = camera.next_frame(first.seq, timeout=5)
        assert second.seq > first.seq
        assert camera.latest_frame().seq >= second.seq
    finally:
        camera.close()
    assert not camera.streaming
