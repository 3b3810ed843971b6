"""The TOML writer: whatever it writes, tomllib reads back as the same data."""
import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.tomlwrite import dumps

keys = st.text(min_size=1, max_size=12)
scalars = (st.text(max_size=30) | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.booleans()
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars | st.lists(scalars, max_size=4),
                      lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_round_trip(data):
    assert tomllib.loads(dumps(data)) == data


def test_device_table_shape():
    text = dumps({"devices": {"id_card": {"driver": "usb", "options": {"vendor_id": "0x0400"}}}})
    assert "[devices.id_card]" in text and 'vendor_id = "0x0400"' in text
