"""The camera simulator's scripted visits: the portrait it films, what each sequence shows, its clock."""
from __future__ import annotations

import importlib.metadata
import io

import numpy as np
import pytest
from PIL import Image

from kiosk.errors import ConfigError
from kiosk.hardware.simulators import camera_scenes as scenes
from kiosk.hardware.simulators.camera import SimCamera


def _frames(camera: SimCamera, n: int):
    return [camera.read_frame() for _ in range(n)]


def test_the_portrait_comes_from_the_installed_wheel_not_a_download():
    dist = importlib.metadata.distribution(scenes.PORTRAIT_DIST)
    listed = {str(f) for f in dist.files or ()}
    assert scenes.PORTRAIT_FILE in listed  # in the wheel's RECORD: installed by pip, not fetched later
    path = scenes.portrait_path()
    with Image.open(path) as img:
        assert img.size == (512, 600) and img.format == "JPEG"


def test_photo_frames_are_identical_and_live_frames_are_not():
    photo = SimCamera("camera", {"sequence": "photo", "realtime": False})
    a, b, c = _frames(photo, 3)
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(b.pixels, c.pixels)
    live = SimCamera("camera", {"sequence": "approach", "realtime": False})
    held = [f for f in _frames(live, 90) if f.taken_at - live._started_at >= 3.0]  # centred and holding
    assert len(held) >= 20
    assert not any(np.array_equal(x.pixels, y.pixels) for x, y in zip(held, held[1:]))


def test_empty_shows_only_the_wall_and_approach_starts_empty_then_shows_a_person():
    empty = SimCamera("camera", {"sequence": "empty", "realtime": False, "width": 320, "height": 240})
    frame = empty.read_frame()
    assert frame.width == 320 and frame.height == 240
    assert np.array_equal(frame.pixels, scenes.wall(320, 240))
    approach = SimCamera("camera", {"realtime": False})
    frames = _frames(approach, 80)
    wall = scenes.wall(640, 480)
    assert np.array_equal(frames[0].pixels, wall)
    assert not np.array_equal(frames[-1].pixels, wall)


def test_a_blink_covers_the_eyes_for_a_few_frames_only():
    seq = scenes.SEQUENCES["approach"]
    shut = "".join("x" if seq.at(n / 20)[1] else "." for n in range(200))  # 10 s at 20 frames/s
    runs = [len(run) for run in shut.split(".") if run]
    assert len(runs) >= 3 and all(4 <= n <= 7 for n in runs)  # a blink every few seconds, about 0.3 s long
    open_, shut = (scenes.compose(640, 480, scenes.PLACED, c) for c in (False, True))
    differ = np.argwhere(np.any(open_ != shut, axis=2))
    (y0, x0), (y1, x1) = differ.min(axis=0), differ.max(axis=0)
    assert y1 - y0 < 40 and 60 < x1 - x0 < 160  # only two small patches across the eyes differ


def test_frames_are_stamped_with_the_sequence_clock_when_not_realtime():
    camera = SimCamera("camera", {"realtime": False, "fps": 25.0})
    frames = _frames(camera, 5)
    assert [f.seq for f in frames] == [1, 2, 3, 4, 5]
    steps = {round(b.taken_at - a.taken_at, 6) for a, b in zip(frames, frames[1:])}
    assert steps == {0.04}


def test_play_switches_sequence_and_starts_it_again():
    camera = SimCamera("camera", {"sequence": "empty", "realtime": False})
    _frames(camera, 10)
    camera.play("photo")
    frame = camera.read_frame()
    assert frame.seq == 1
    assert not np.array_equal(frame.pixels, scenes.wall(640, 480))
    with pytest.raises(ConfigError):
        camera.play("juggling")


def test_unknown_sequence_or_fps_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        SimCamera("camera", {"sequence": "dance"})
    assert err.value.key == "devices.camera.options.sequence"
    with pytest.raises(ConfigError) as err:
        SimCamera("camera", {"fps": 500.0})
    assert err.value.key == "devices.camera.options.fps"


def test_no_face_fault_shows_nobody_for_the_next_frames():
    camera = SimCamera("camera", {"sequence": "photo", "realtime": False}, {"no_face": 2})
    first, second, third = _frames(camera, 3)
    wall = scenes.wall(640, 480)
    assert np.array_equal(first.pixels, wall) and np.array_equal(second.pixels, wall)
    assert not np.array_equal(third.pixels, wall)


def test_capture_is_a_jpeg_of_the_current_frame():
    camera = SimCamera("camera", {"sequence": "photo", "realtime": False, "width": 320, "height": 240})
    img = Image.open(io.BytesIO(camera.capture()))
    assert img.format == "JPEG" and img.size == (320, 240)
    assert camera.captures == 1


def test_configured_images_are_served_in_turn(tmp_path):
    paths = []
    for i, (fmt, colour) in enumerate([("JPEG", (250, 0, 0)), ("PNG", (0, 0, 250))]):
        p = tmp_path / f"img{i}.{fmt.lower()}"
        Image.new("RGB", (40, 30), colour).save(p, fmt)
        paths.append(str(p))
    camera = SimCamera("camera", {"images": paths, "realtime": False})
    first, second, third = _frames(camera, 3)
    assert first.pixels[15, 20, 0] > 200 and second.pixels[15, 20, 2] > 200
    assert np.array_equal(first.pixels, third.pixels)


def test_bad_image_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        SimCamera("camera", {"images": [str(tmp_path / "missing.jpg")]})
    assert err.value.key == "devices.camera.options.images"


def test_stream_keeps_the_newest_frame_without_blocking():
    camera = SimCamera("camera", {"sequence": "approach", "fps": 30.0})
    assert camera.latest_frame() is None
    camera.start_stream()
    try:
        first = camera.next_frame(-1, timeout=5)
        later = camera.next_frame(first.seq, timeout=5)
        assert later.seq > first.seq and later.taken_at > first.taken_at
        assert camera.latest_frame() is not None
        assert Image.open(io.BytesIO(camera.capture())).format == "JPEG"  # a still while streaming
    finally:
        camera.stop_stream()
    assert not camera.streaming and camera.latest_frame() is None
