"""A small, tolerant InfluxDB line protocol parser for the ingest endpoint.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``. The measurement is the
metric name and tags are labels; the field ``value`` is the sample's value and any other field
``f`` becomes the metric ``<measurement>_<f>``. Integers (``12i``, ``12u``), floats and booleans
(``t``/``false``, stored as 1/0) are accepted; a string field is reported as an error. A line
without a timestamp takes the server's receive time (as InfluxDB does).

A bad line is reported with its 1-based line number and skipped; every other line is kept.
Blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fleetwatch.telemetry import Sample

Precision = Literal["ns", "us", "ms", "s"]
# Multiply a timestamp in the given precision by num/den to get milliseconds.
_TO_MS: dict[str, tuple[int, int]] = {
    "ns": (1, 1_000_000),
    "us": (1, 1000),
    "ms": (1, 1),
    "s": (1000, 1),
}
_INT_RE = re.compile(r"^-?\d+[iu]$")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_SURROGATE = re.compile("[\udc80-\udcff]")
# Line protocol escapes only these; any other backslash is a literal character.
_ESCAPED = re.compile(r"\\([,= ])")


class LineError(ValueError):
    """A line that cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ParseError:
    line: int
    message: str


@dataclass(slots=True)
class ParseResult:
    """Samples in line order with the line each came from, and the lines that failed."""

    samples: list[Sample] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


def parse(text: str, *, precision: Precision = "ms", now_ms: int) -> ParseResult:
    """Parse a line protocol batch; ``now_ms`` stamps lines that carry no timestamp."""
    if precision not in _TO_MS:
        raise ValueError(f"precision must be one of {', '.join(_TO_MS)}")
    num, den = _TO_MS[precision]
    out = ParseResult()
    # Bytes that were not UTF-8 arrive as lone surrogates (decoded with "surrogateescape").
    check_utf8 = _SURROGATE.search(text) is not None
    heads: dict[str, tuple[str, dict[str, str]]] = {}  # a series' head repeats across a batch
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if check_utf8 and _SURROGATE.search(line):
            out.errors.append(ParseError(number, "line is not valid UTF-8"))
            continue
        try:
            samples = _parse_line(line, num, den, now_ms, heads)
        except LineError as exc:
            out.errors.append(ParseError(number, str(exc)))
            continue
        out.samples.extend(samples)
        out.lines.extend([number] * len(samples))
    return out


def _parse_line(
    line: str, num: int, den: int, now_ms: int, heads: dict[str, tuple[str, dict[str, str]]]
) -> list[Sample]:
    """The samples of one line, all or none (a bad field drops its whole line)."""
    if "\\" in line or '"' in line:
        head, fields_text, stamp = _split_escaped(line)
    else:
        parts = line.split(" ")
        if len(parts) not in (2, 3) or not all(parts):
            raise LineError(_shape_message(line))
        head, fields_text = parts[0], parts[1]
        stamp = parts[2] if len(parts) == 3 else None
    parsed_head = heads.get(head)
    if parsed_head is None:
        parsed_head = heads[head] = _parse_head(head)
    measurement, labels = parsed_head
    timestamp_ms = _parse_timestamp(stamp, num, den, now_ms)
    if fields_text.startswith("value=") and "," not in fields_text:
        # The common line: one float field named value.
        return [Sample(measurement, labels, _field_value("value", fields_text[6:]), timestamp_ms)]
    return [
        Sample(
            measurement if key == "value" else f"{measurement}_{key}", labels, value, timestamp_ms
        )
        for key, value in _parse_fields(fields_text)
    ]


def _shape_message(line: str) -> str:
    return (
        "expected 'measurement[,tag=value...] field=value[,...] [timestamp]' "
        f"separated by single spaces, got {_clip(line)!r}"
    )


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_timestamp(stamp: str | None, num: int, den: int, now_ms: int) -> int:
    if stamp is None:
        return now_ms
    if not (stamp.isascii() and stamp.isdigit()):
        digits = stamp[1:]
        if stamp.startswith("-") and digits.isascii() and digits.isdigit():
            raise LineError(f"timestamp {stamp} is negative")
        raise LineError(f"timestamp {_clip(stamp)!r} is not an integer")
    value = int(stamp)
    return value if num == den else value * num // den


def _parse_head(head: str) -> tuple[str, dict[str, str]]:
    parts = _split(head, ",")
    measurement = _unescape(parts[0])
    if not measurement:
        raise LineError("missing measurement name")
    labels: dict[str, str] = {}
    for tag in parts[1:]:
        pair = _split(tag, "=")
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise LineError(f"tag {_clip(tag)!r} is not key=value")
        key, value = _unescape(pair[0]), _unescape(pair[1])
        if key in labels:
            raise LineError(f"tag {key!r} appears twice")
        labels[key] = value
    return measurement, labels


def _parse_fields(text: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in _split(text, ","):
        pair = _split(item, "=", maxsplit=1)
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise LineError(f"field {_clip(item)!r} is not key=value")
        key = _unescape(pair[0])
        out.append((key, _field_value(key, pair[1])))
    if not out:
        raise LineError("no fields")
    return out


def _field_value(key: str, text: str) -> float:
    if "_" not in text and " " not in text:  # Python's float() would take "1_0" and " 1"
        try:
            return float(text)
        except ValueError:
            pass
    if not text:
        raise LineError(f"field {key!r} has no value")
    if text.startswith('"'):
        raise LineError(f"field {key!r} is a string; only numbers and booleans are metrics")
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    if _INT_RE.match(text):
        return float(int(text[:-1]))
    raise LineError(f"field {key!r} value {_clip(text)!r} is not a number")


# Escapes --------------------------------------------------------------------------------------


def _split(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` not preceded by a backslash (the escapes stay for :func:`_unescape`)."""
    if "\\" not in text:
        return text.split(sep, maxsplit)
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED.sub(r"\1", text)


def _split_escaped(line: str) -> tuple[str, str, str | None]:
    """Split a line holding escapes or quoted strings into head, fields and timestamp."""
    sections: list[str] = []
    current: list[str] = []
    in_quotes = False
    i = 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line):
            current.append(line[i : i + 2])
            i += 2
            continue
        if char == '"' and sections:  # quotes only delimit string field values
            in_quotes = not in_quotes
        if char == " " and not in_quotes:
            sections.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    if in_quotes:
        raise LineError("unterminated string field value")
    sections.append("".join(current))
    if len(sections) not in (2, 3) or not all(sections):
        raise LineError(_shape_message(line))
    return sections[0], sections[1], sections[2] if len(sections) == 3 else None
