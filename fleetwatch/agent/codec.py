"""The agent's dense batch encoding (``Content-Type: application/x-fleetwatch-dense``).

Lossless: every sample comes back with the same name, labels, float64 bit pattern and timestamp.
Samples of one series keep their order; the order across series is series-major (the order in
which each series first appears in the batch).

Wire format, version 1 (all integers are unsigned LEB128 varints unless said otherwise; "zz" is a
zigzag-mapped signed varint)::

    body    = "FWD1" | u8 compression (0 none, 1 zlib, 2 lzma) | varint raw_length | payload
    payload = raw, zlib(raw), or raw LZMA2 (no container; 1 MiB dictionary, preset 6) of raw
    raw     = zz base_ts
            | varint n_strings | n_strings * (varint byte_length | UTF-8 bytes)
            | varint n_series  | n_series  * series_head
            | timestamps of every series, in series order
            | values of every series, in series order
    series_head = varint name_string | varint n_labels | n_labels * (varint key | varint value)
                | varint n_points | u8 value_mode | [u8 decimals, when value_mode is DECIMAL]
    timestamps  = zz (first - base_ts) | zz (second - first) | zz delta-of-delta ...
    values      = INT:     zz deltas of the integer values (the first from 0)
                | DECIMAL: zz deltas of m where value == m / 10**decimals exactly
                | XOR:     per point, the float64 bits XOR the previous bits (the first from 0)
                           as a control byte (leading zero bytes << 4 | trailing zero bytes;
                           0x88 when the XOR is 0) and the 8 - leading - trailing middle bytes

Regular scrape intervals make the delta-of-delta stream almost all zeros and sensor readings with a
fixed number of decimals become small integer deltas; LZMA2 (or zlib) then squeezes the columns.
Strings (metric names, label keys and values) are stored once per batch. The LZMA2 dictionary is
fixed by the format, so a hostile body cannot make the decoder allocate a large one.

:func:`decode` is strict and bounded: it reads hostile input without unbounded allocation and
raises :class:`ValueError` saying what is wrong.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Sequence

from fleetwatch.telemetry import Sample

CONTENT_TYPE = "application/x-fleetwatch-dense"
MAGIC = b"FWD1"
COMPRESS_NONE = 0
COMPRESS_ZLIB = 1
COMPRESS_LZMA = 2
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 2**20}]
_LZMA_DECODE_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 2**20}]

MODE_INT = 0
MODE_DECIMAL = 1
MODE_XOR = 2
MAX_DECIMALS = 9

# Limits of decode: a batch larger than these is refused rather than allocated.
MAX_BODY_BYTES = 64 * 2**20
MAX_RAW_BYTES = 256 * 2**20
MAX_SAMPLES = 5_000_000
MAX_SERIES = 1_000_000
MAX_STRINGS = 2_000_000
MAX_STRING_BYTES = 65_536
MAX_LABELS = 64

_EXACT_INT_LIMIT = 2**53
_DOUBLE = struct.Struct("<d")
_U64 = struct.Struct("<Q")


# ---------------------------------------------------------------------------------------------
# encoding


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63) if -(2**63) <= n < 2**63 else _raise_range(n)


def _raise_range(n: int) -> int:
    raise ValueError(f"integer {n} does not fit in 64 bits")


def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _bits(value: float) -> int:
    bits: int = _U64.unpack(_DOUBLE.pack(value))[0]
    return bits


def _value_mode(values: Sequence[float]) -> tuple[int, int, list[int]]:
    """The densest exact representation of a series' values: (mode, decimals, integers)."""
    if all(_is_exact_int(v) for v in values):
        return MODE_INT, 0, [int(v) for v in values]
    if all(v == v and abs(v) < 1e9 for v in values):  # NaN and huge values go XOR
        # The shortest repr shows how many decimals a value needs; try that first.
        guess = max(_repr_decimals(v) for v in values)
        candidates = range(1, MAX_DECIMALS + 1)
        for decimals in ([guess] if 0 < guess <= MAX_DECIMALS else []) + list(candidates):
            ints = _as_decimal(values, 10**decimals)
            if ints is not None:
                return MODE_DECIMAL, decimals, ints
    return MODE_XOR, 0, []


def _repr_decimals(v: float) -> int:
    text = repr(v)
    if "e" in text or "." not in text:
        return 0
    return len(text) - text.index(".") - 1


def _is_exact_int(v: float) -> bool:
    return v.is_integer() and abs(v) < _EXACT_INT_LIMIT and not (v == 0 and _bits(v) != 0)


def _as_decimal(values: Sequence[float], scale: int) -> list[int] | None:
    ints = []
    for v in values:
        m = round(v * scale)
        # int / int is correctly rounded, so the check is the same division decode performs.
        # Float equality is bit equality here except for the sign of zero (NaN never gets here).
        if abs(m) >= _EXACT_INT_LIMIT or m / scale != v or (v == 0 and _bits(v) != 0):
            return None
        ints.append(m)
    return ints


def series_major(samples: Sequence[Sample]) -> list[Sample]:
    """The order :func:`decode` returns a batch in: grouped by series, series in order of first
    appearance, each series' samples in their original order (receivers report by this index)."""
    return [s for group in _group(samples).values() for s in group]


def encode(samples: Sequence[Sample], *, compression: str = "lzma", level: int = 6) -> bytes:
    """Encode a batch losslessly. ``compression`` is lzma (densest, for the uplink), zlib
    (faster, at ``level``) or none."""
    if compression not in ("lzma", "zlib", "none"):
        raise ValueError(f"unknown compression {compression!r}; use lzma, zlib or none")
    raw = _raw(samples)
    header = bytearray(MAGIC)
    if compression == "lzma":
        header.append(COMPRESS_LZMA)
        payload = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    elif compression == "zlib":
        header.append(COMPRESS_ZLIB)
        payload = zlib.compress(raw, level)
    else:
        header.append(COMPRESS_NONE)
        payload = raw
    _put_varint(header, len(raw))
    return bytes(header) + payload


def _group(
    samples: Sequence[Sample],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[Sample]]:
    series: dict[tuple[str, tuple[tuple[str, str], ...]], list[Sample]] = {}
    for s in samples:
        key = (s.name, tuple(sorted(s.labels.items())))
        points = series.get(key)
        if points is None:
            series[key] = [s]
        else:
            points.append(s)
    return series


def _raw(samples: Sequence[Sample]) -> bytes:
    """The uncompressed payload: string table, series heads, timestamp and value columns."""
    strings: dict[str, int] = {}

    def sid(text: str) -> int:
        idx = strings.get(text)
        if idx is None:
            idx = strings[text] = len(strings)
        return idx

    heads, stamps, values = bytearray(), bytearray(), bytearray()
    base = min((s.timestamp_ms for s in samples), default=0)
    series = _group(samples)
    _put_varint(heads, len(series))
    for (name, labels), points in series.items():
        _put_varint(heads, sid(name))
        _put_varint(heads, len(labels))
        for k, v in labels:
            _put_varint(heads, sid(k))
            _put_varint(heads, sid(v))
        _put_varint(heads, len(points))
        floats = [float(p.value) for p in points]
        mode, decimals, ints = _value_mode(floats)
        heads += bytes((mode, decimals)) if mode == MODE_DECIMAL else bytes((mode,))
        _encode_timestamps(stamps, [p.timestamp_ms for p in points], base)
        if mode == MODE_XOR:
            _encode_xor(values, floats)
        else:
            _encode_int_deltas(values, ints)
    raw = bytearray()
    _put_varint(raw, _zigzag(base))
    _put_varint(raw, len(strings))
    for text in strings:
        data = text.encode()
        _put_varint(raw, len(data))
        raw += data
    return bytes(raw + heads + stamps + values)


def _encode_timestamps(out: bytearray, stamps: list[int], base: int) -> None:
    prev = base
    prev_delta = 0
    for i, ts in enumerate(stamps):
        delta = ts - prev
        _put_varint(out, _zigzag(delta if i < 2 else delta - prev_delta))
        prev_delta = delta
        prev = ts


def _encode_int_deltas(out: bytearray, ints: list[int]) -> None:
    prev = 0
    for n in ints:
        _put_varint(out, _zigzag(n - prev))
        prev = n


def _encode_xor(out: bytearray, values: list[float]) -> None:
    prev = 0
    for v in values:
        bits = _bits(v)
        x = bits ^ prev
        prev = bits
        if x == 0:
            out.append(0x88)
            continue
        raw = x.to_bytes(8, "big")
        lead = (64 - x.bit_length()) // 8
        trail = ((x & -x).bit_length() - 1) // 8
        out.append((lead << 4) | trail)
        out += raw[lead : 8 - trail]


# ---------------------------------------------------------------------------------------------
# decoding


class _Reader:
    """A cursor over the raw payload; every read checks the bounds."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self, what: str) -> int:
        result = 0
        shift = 0
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ValueError(f"dense batch truncated while reading {what}")
            byte = data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift >= 70:
                raise ValueError(f"dense batch has an over-long varint in {what}")

    def signed(self, what: str) -> int:
        n = self.varint(what)
        if n >= 2**64:
            raise ValueError(f"dense batch has an out-of-range integer in {what}")
        return (n >> 1) ^ -(n & 1)

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise ValueError(f"dense batch truncated while reading {what}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise ValueError(f"dense batch truncated while reading {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def count(self, what: str, limit: int, min_bytes_each: int) -> int:
        """A count that cannot exceed ``limit`` nor what the remaining bytes could hold."""
        n = self.varint(what)
        if n > limit:
            raise ValueError(f"dense batch declares {n} {what}; the limit is {limit}")
        if n * min_bytes_each > len(self.data) - self.pos:
            raise ValueError(f"dense batch declares {n} {what} but is too short to hold them")
        return n


def _decompress(body: bytes) -> bytes:
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"dense batch of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    if len(body) < len(MAGIC) + 2 or body[: len(MAGIC)] != MAGIC:
        raise ValueError("not a fleetwatch dense batch (bad magic; expected 'FWD1')")
    head = _Reader(body)
    head.pos = len(MAGIC)
    compression = head.byte("compression")
    raw_length = head.varint("raw length")
    if raw_length > MAX_RAW_BYTES:
        raise ValueError(f"dense batch declares {raw_length} raw bytes; limit {MAX_RAW_BYTES}")
    payload = body[head.pos :]
    if compression == COMPRESS_NONE:
        raw = payload
    elif compression == COMPRESS_ZLIB:
        inflater = zlib.decompressobj()
        try:
            # max_length bounds the output, so a zip bomb cannot allocate past the limit.
            raw = inflater.decompress(payload, raw_length + 1)
        except zlib.error as exc:
            raise ValueError(f"dense batch payload is not valid zlib data: {exc}") from None
        if not inflater.eof or inflater.unused_data:
            raise ValueError("dense batch zlib stream is truncated or has trailing bytes")
    elif compression == COMPRESS_LZMA:
        unlzma = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_DECODE_FILTERS)
        try:
            raw = unlzma.decompress(payload, raw_length + 1)
        except lzma.LZMAError as exc:
            raise ValueError(f"dense batch payload is not valid LZMA2 data: {exc}") from None
        if len(raw) <= raw_length and not unlzma.eof:
            raise ValueError("dense batch LZMA2 stream is truncated")
        if unlzma.unused_data:
            raise ValueError("dense batch LZMA2 stream has trailing bytes")
    else:
        raise ValueError(f"dense batch uses unknown compression {compression}")
    if len(raw) != raw_length:
        raise ValueError(f"dense batch raw length is {len(raw)}, header says {raw_length}")
    return raw


def decode(body: bytes) -> list[Sample]:
    """Decode a dense batch; raise :class:`ValueError` naming the defect on malformed input."""
    r = _Reader(_decompress(bytes(body)))
    base = r.signed("base timestamp")
    strings = []
    for _ in range(r.count("strings", MAX_STRINGS, 1)):
        length = r.varint("string length")
        if length > MAX_STRING_BYTES:
            raise ValueError(f"dense batch string of {length} bytes exceeds {MAX_STRING_BYTES}")
        try:
            strings.append(r.take(length, "string").decode())
        except UnicodeDecodeError:
            raise ValueError("dense batch string is not valid UTF-8") from None

    def text(what: str) -> str:
        idx = r.varint(what)
        if idx >= len(strings):
            raise ValueError(f"dense batch {what} refers to string {idx} of {len(strings)}")
        return strings[idx]

    heads = []
    total = 0
    for _ in range(r.count("series", MAX_SERIES, 4)):
        name = text("metric name")
        labels: dict[str, str] = {}
        for _ in range(r.count("labels", MAX_LABELS, 2)):
            key = text("label key")
            if key in labels:
                raise ValueError(f"dense batch series {name} repeats label {key!r}")
            labels[key] = text("label value")
        n_points = r.count("points", MAX_SAMPLES, 0)
        total += n_points
        if total > MAX_SAMPLES:
            raise ValueError(f"dense batch holds more than {MAX_SAMPLES} samples")
        mode = r.byte("value mode")
        decimals = r.byte("decimals") if mode == MODE_DECIMAL else 0
        if mode not in (MODE_INT, MODE_DECIMAL, MODE_XOR) or decimals > MAX_DECIMALS:
            raise ValueError(f"dense batch series {name} has unknown value mode {mode}/{decimals}")
        heads.append((name, labels, n_points, mode, decimals))
    if total * 2 > len(r.data) - r.pos:
        raise ValueError(f"dense batch declares {total} samples but is too short to hold them")
    stamps = [_decode_timestamps(r, n, base) for _, _, n, _, _ in heads]
    out: list[Sample] = []
    for (name, labels, n, mode, decimals), ts in zip(heads, stamps, strict=True):
        vals = _decode_xor(r, n) if mode == MODE_XOR else _decode_ints(r, n, mode, decimals)
        out.extend(Sample(name, labels, v, t) for v, t in zip(vals, ts, strict=True))
    if r.pos != len(r.data):
        raise ValueError(f"dense batch has {len(r.data) - r.pos} trailing bytes")
    return out


def _decode_timestamps(r: _Reader, n: int, base: int) -> list[int]:
    out = []
    prev = base
    delta = 0
    for i in range(n):
        step = r.signed("timestamp")
        delta = step if i < 2 else delta + step
        prev += delta
        if not 0 <= prev < 2**63:
            raise ValueError(f"dense batch timestamp {prev} is out of range")
        out.append(prev)
    return out


def _decode_ints(r: _Reader, n: int, mode: int, decimals: int) -> list[float]:
    out = []
    prev = 0
    scale = 10**decimals
    for _ in range(n):
        prev += r.signed("value")
        if abs(prev) >= _EXACT_INT_LIMIT:
            raise ValueError(f"dense batch value {prev} is out of the exact range")
        out.append(float(prev) if mode == MODE_INT else prev / scale)
    return out


def _decode_xor(r: _Reader, n: int) -> list[float]:
    out = []
    prev = 0
    for _ in range(n):
        control = r.byte("value control")
        if control != 0x88:
            lead, trail = control >> 4, control & 0x0F
            if lead + trail >= 8:
                raise ValueError(f"dense batch has a bad value control byte {control:#x}")
            middle = r.take(8 - lead - trail, "value bytes")
            prev ^= int.from_bytes(middle, "big") << (8 * trail)
        out.append(_DOUBLE.unpack(_U64.pack(prev))[0])
    return out
