"""The flow syntax of `kiosk demo --flow` (kiosk/demo/flows.py), read without running anything."""
from __future__ import annotations

import pytest

from kiosk.demo.flows import ANSWER_LOST, FLOW_SYNTAX, OPTIONS, FlowScript
from kiosk.errors import ConfigError


def test_every_option_is_in_the_help_and_the_help_examples_parse() -> None:
    for key, option in OPTIONS.items():
        assert f"  {key}=" in FLOW_SYNTAX, key
        assert option.field in FlowScript.__dataclass_fields__, key
    examples = FLOW_SYNTAX.split("e.g. --flow", 1)[1].split()
    scripts = [FlowScript.parse(flow) for flow in examples]
    assert [s.item for s in scripts] == ["H01", "S01", "T02", "S01", "H12", "E01", "H13", "E01", "S01"]
    assert scripts[0] == FlowScript("H01")  # no option: the plain happy path
    assert scripts[-1].help == "identify"


def test_help_names_a_screen_the_resident_calls_from() -> None:
    assert FlowScript.parse("S01:help=identify") == FlowScript("S01", help="identify")
    with pytest.raises(ConfigError, match="help=home"):
        FlowScript.parse("S01:help=home")


def test_options_set_their_fields_and_the_rest_are_field_values() -> None:
    script = FlowScript.parse("h13:zhang:fault=answer_lost:fault=paper_out:lost=all:pay=no:slip=NO:leave=form:"
                              "mrz=typed:chip=cloned:violation=WF0002")
    assert (script.item, script.person, script.values) == ("H13", "ZHANG", {"violation": "WF0002"})
    assert script.faults == (ANSWER_LOST, "paper_out") and script.lost == -1  # fault= repeats, collected in order
    assert (script.pay, script.slip, script.leave, script.typed_mrz, script.chip) == (False, False, "form", True,
                                                                                       "cloned")
    assert script.scripted_fault
    assert FlowScript.parse("H13:fault=answer_lost").lost == 2  # the default number of lost answers
    voiced = FlowScript.parse("H01:voice=full:private=yes")
    assert (voiced.voice, voiced.private, voiced.values) == ("full", True, {})
    assert (FlowScript("H01").voice, FlowScript("H01").private) == ("", False)  # the station's defaults


@pytest.mark.parametrize("flow, named", [
    ("H01:mrz=scanned", "mrz=scanned"),
    ("H01:fault=meteor", "fault=meteor"),
    ("H01:fault=answer_lost:lost=0", "lost=0"),
    ("H01:lost=3", "lost="),  # only with fault=answer_lost
    ("E01:chip=forged", "chip=forged"),
    ("H01:voice=loud", "voice=loud"),
    ("H01:NOBODY", "NOBODY"),
])
def test_a_bad_option_value_is_refused_naming_it(flow: str, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        FlowScript.parse(flow)
    assert named in refused.value.detail


def test_face_names_what_the_camera_sees_on_an_item_with_a_face_check() -> None:
    from kiosk.demo.flows import FACE_VISITS
    from kiosk.hardware.simulators.camera_scenes import SEQUENCES
    from kiosk.services.catalog import Catalog

    assert FlowScript.parse("S01:face=photo") == FlowScript("S01", face="photo")
    assert FlowScript.parse("S01:face=far").face == "far" and FlowScript("S01").face == ""
    assert set(FACE_VISITS) == set(SEQUENCES)  # every visit the camera simulator plays, and only those
    with pytest.raises(ConfigError, match="face=selfie"):
        FlowScript.parse("S01:face=selfie")
    catalog = Catalog.load()
    FlowScript.parse("S01:face=photo").check(catalog.get("S01"))
    with pytest.raises(ConfigError, match="face=photo"):
        FlowScript.parse("H01:face=photo").check(catalog.get("H01"))


def test_input_keypad_is_the_tactile_keypad_and_touch_the_default() -> None:
    keyed = FlowScript.parse("H01:input=keypad:private=yes")
    assert (keyed.input, keyed.keypad, keyed.private, keyed.values) == ("keypad", True, True, {})
    assert FlowScript("H01").input == "touch" and not FlowScript("H01").keypad
    with pytest.raises(ConfigError) as refused:
        FlowScript.parse("H01:input=voice")
    assert "input=voice" in refused.value.detail


def test_touch_ms_is_nearest_rank_and_null_when_nothing_was_timed() -> None:
    from kiosk.demo.summary import FlowRecord, response_figures

    assert FlowRecord("H01").touch_ms == {"p50": None, "p95": None, "max": None}
    times = [float(n) for n in range(20, 0, -1)]  # 20 .. 1 ms, out of order
    assert response_figures(times) == {"p50": 10.0, "p95": 19.0, "max": 20.0}
    assert response_figures([7.25]) == {"p50": 7.2, "p95": 7.2, "max": 7.2}
