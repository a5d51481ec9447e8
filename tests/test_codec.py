"""Property tests of the payload codec and the message model (no Redis needed)."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rmem
from rmem._codec import FLAG_LZ4, FORMAT_V1, pack, packb, unpack
from rmem._session_core import coerce_message, decode_message, encode_message

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)
field_names = st.text(min_size=1).filter(
    lambda k: (
        k not in {"id", "role", "content", "created_at", "name", "metadata"}
        and not k.startswith("_")
        and k.isidentifier()
    )
)
messages = st.builds(
    dict,
    role=st.text(min_size=1).filter(lambda r: r.strip() != ""),
    content=json_values,
    metadata=st.none() | st.dictionaries(st.text(), json_values, max_size=4),
    name=st.none() | st.text(),
).flatmap(
    lambda base: st.dictionaries(field_names, json_values, max_size=3).map(
        lambda extra: {**extra, **base}
    )
)


@given(json_values, st.sampled_from([16, 64, 1024, 1 << 30]))
def test_any_json_value_round_trips(value: Any, threshold: int) -> None:
    assert unpack(pack(value, compress_threshold=threshold)) == value


@given(st.lists(json_values | st.binary(max_size=8), max_size=4))
def test_the_per_thread_packer_packs_as_msgpack_does(values: list[Any]) -> None:
    expected = [msgpack.packb(v, use_bin_type=True) for v in values]
    assert [packb(v) for v in values] == expected


@pytest.mark.parametrize("bad", [[1, object()], {"a": [2, 2**70]}, ["x" * 100, {1, 2}]])
def test_a_failed_pack_leaves_nothing_behind_for_the_next(bad: Any) -> None:
    with pytest.raises((TypeError, OverflowError)):
        packb(bad)
    assert packb({"x": 1}) == msgpack.packb({"x": 1}, use_bin_type=True)
    with pytest.raises(rmem.ValidationError):
        pack(bad)
    assert unpack(pack(["after"])) == ["after"]


def test_threads_pack_on_packers_of_their_own() -> None:
    values = [{"n": i, "text": "x" * (i % 300)} for i in range(2000)]
    expected = [msgpack.packb(v, use_bin_type=True) for v in values]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: [packb(v) for v in values], range(8)))
    assert all(r == expected for r in results)


@given(messages)
@settings(max_examples=300)
def test_every_valid_message_round_trips(data: dict[str, Any]) -> None:
    msg = coerce_message(data)
    payload = encode_message(msg, 1 << 30, 64)
    back = decode_message(payload, "k")
    assert back == msg
    assert back.to_dict() == msg.to_dict()
    for key, value in data.items():
        if value is not None or key not in {"name", "metadata"}:
            assert back.to_dict()[key] == value


def test_large_payloads_are_compressed_and_small_ones_are_not() -> None:
    big = pack("a" * 10_000, compress_threshold=1024)
    small = pack("a" * 100, compress_threshold=1024)
    assert big[0] == FORMAT_V1 | FLAG_LZ4 and len(big) < 1000
    assert small[0] == FORMAT_V1
    # random bytes do not compress: stored plain even above the threshold
    noise = pack(list(range(0, 2000, 7)), compress_threshold=16)
    assert unpack(noise) == list(range(0, 2000, 7))


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x02abc", b"\x01\xc1", bytes([FORMAT_V1 | FLAG_LZ4]) + b"\x00\x00\x00\x10zz"],
)
def test_corrupt_payloads_raise_corrupt_data_error(payload: bytes) -> None:
    with pytest.raises(rmem.CorruptDataError):
        unpack(payload)


def test_decoded_non_message_is_corrupt() -> None:
    with pytest.raises(rmem.CorruptDataError, match="the-key"):
        decode_message(bytes([FORMAT_V1]) + msgpack.packb([1, 2]), "the-key")


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(rmem.CorruptDataError):
        unpack(data)


def test_tuples_come_back_as_lists() -> None:
    msg = coerce_message({"role": "user", "content": ("a", ("b",))})
    back = decode_message(encode_message(msg, 1 << 20, 1024), "k")
    assert back.content == ["a", ["b"]]
