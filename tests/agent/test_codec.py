"""The dense codec: lossless on every float64 bit pattern, strict and bounded on hostile input."""

from __future__ import annotations

import contextlib
import gzip
import math
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetwatch import lineprotocol
from fleetwatch.agent import codec
from fleetwatch.agent.workload import GatewayWorkload
from fleetwatch.telemetry import Sample


def exact(samples: list[Sample]) -> list[tuple[object, ...]]:
    """Samples as comparable tuples that tell apart -0.0/0.0 and NaN payloads."""
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.timestamp_ms, struct.pack("<d", s.value))
        for s in samples
    )


label_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
samples_strategy = st.lists(
    st.builds(
        Sample,
        st.sampled_from(["temperature_celsius", "power_watts", "x", "a:b"]),
        st.dictionaries(st.sampled_from(["device", "site", "sensor", "rail"]), label_text),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(2**60), 2**60).map(float),
            st.integers(-(10**6), 10**6).map(lambda n: n / 1000),
        ),
        st.integers(0, 2**62),
    ),
    max_size=60,
)


@given(samples_strategy, st.sampled_from(["lzma", "zlib", "none"]))
@settings(max_examples=300, deadline=None)
def test_round_trip_is_exact_for_any_batch(samples: list[Sample], compression: str) -> None:
    assert exact(codec.decode(codec.encode(samples, compression=compression))) == exact(samples)


def test_series_keep_their_order_and_special_values_survive() -> None:
    labels = {"device": "d", "site": "s"}
    values = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1]
    stamps = [1000, 999, 5000, 5000, 0, 2**53, 7, 8]  # out of order and repeated on purpose
    batch = [Sample("m", labels, v, t) for v, t in zip(values, stamps, strict=True)]
    back = codec.decode(codec.encode(batch))
    assert [s.timestamp_ms for s in back] == stamps
    assert [struct.pack("<d", s.value) for s in back] == [struct.pack("<d", v) for v in values]


def test_a_gateway_hour_is_three_times_smaller_than_gzip_line_protocol() -> None:
    # One minute of 20 devices (the agent's default flush) against Telegraf-sized gzip batches.
    samples = [s for tick in GatewayWorkload(20).ticks(6) for s in tick]
    dense = codec.encode(samples)
    gz = sum(
        len(gzip.compress(lineprotocol.encode(samples[i : i + 1000])))
        for i in range(0, len(samples), 1000)
    )
    assert exact(codec.decode(dense)) == exact(samples)
    assert gz / len(dense) >= 3.0


def _body(raw: bytes, compression: int = codec.COMPRESS_NONE) -> bytes:
    length = bytearray()
    codec._put_varint(length, len(raw))
    return codec.MAGIC + bytes([compression]) + bytes(length) + raw


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "bad magic"),
        (b"GARBAGE!", "bad magic"),
        (codec.MAGIC + b"\x07\x00", "unknown compression"),
        (codec.MAGIC + b"\x01\x05notzlib", "not valid zlib"),
        (codec.MAGIC + b"\x02\x05notlzma", "LZMA2"),
        (_body(b"\x00\x01"), "too short"),  # one string declared, none present
        (_body(b"\x00\xff\xff\xff\xff\x0f"), "limit"),  # four billion strings
        (_body(b"\x00\x00\x01\x05\x00\x01\x00"), "refers to string"),  # name index 5 of 0
        (_body(b"\x00\x01\x01m\x01\x00\x00\x01\x09"), "unknown value mode"),
        (_body(b"\x00\x01\x01m\x01\x00\x00\x00\x00\xff"), "trailing bytes"),
        (_body(b"\x00" + b"\xff" * 12), "over-long varint"),
    ],
)
def test_malformed_input_is_a_clear_value_error(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec.decode(body)


def test_a_zip_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"\x00" * (64 * 2**20), 9)  # 64 MiB of zeros in ~64 KB
    body = _body(b"", codec.COMPRESS_ZLIB)[:-1] + b"\x10" + bomb  # declares 16 raw bytes
    with pytest.raises(ValueError, match="raw length|trailing|truncated"):
        codec.decode(body)
    huge = bytearray()
    codec._put_varint(huge, codec.MAX_RAW_BYTES + 1)
    with pytest.raises(ValueError, match="limit"):
        codec.decode(codec.MAGIC + b"\x01" + bytes(huge) + bomb)


def test_declared_counts_larger_than_the_body_are_refused_before_allocation() -> None:
    # One series claiming 4 million points in a body of a dozen bytes.
    raw = b"\x00\x01\x01m\x01\x00\x00" + b"\x80\x80\xf4\x01" + b"\x00"
    with pytest.raises(ValueError, match="too short"):
        codec.decode(_body(raw))


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    for body in (data, codec.MAGIC + data, _body(data)):
        with contextlib.suppress(ValueError):
            codec.decode(body)
