"""The checked path of the exposition tokenizer: one sample line, every rule checked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectors.iotedge._shapes import Shapes, register_shape

METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class LineError(ValueError):
    """One malformed line; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Relabel:
    """How exposed labels become stored labels, applied while tokenizing.

    ``rename`` maps exposed names to new ones, ``drop`` removes labels, ``add`` adds constant
    labels to every sample (winning over exposed ones), ``drop_empty`` removes ``name=""``.
    """

    rename: tuple[tuple[str, str], ...] = ()
    drop: frozenset[str] = frozenset()
    add: tuple[tuple[str, str], ...] = ()
    drop_empty: bool = False
    _rename_map: dict[str, str] = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rename_map", dict(self.rename))

    def out_name(self, key: str) -> str | None:
        """The stored name of exposed label ``key``, or None when it is dropped."""
        if key in self.drop:
            return None
        return self._rename_map.get(key, key)

    def apply(self, labels: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in labels.items():
            name = self.out_name(key)
            if name is not None and (value or not self.drop_empty):
                out[name] = value
        out.update(self.add)
        return out


def parse_sample_line(
    line: str,
    shapes: Shapes,
    openmetrics: bool,
    relabel: Relabel | None,
) -> tuple[str, dict[str, str], float, int | None]:
    """Parse ``name{labels} value [timestamp] [# exemplar]``; raise :class:`LineError`."""
    brace = line.find("{")
    if brace < 0:
        cut = len(line)
        for blank in (" ", "\t"):
            pos = line.find(blank)
            if 0 <= pos < cut:
                cut = pos
        if cut == len(line):
            raise LineError("sample without a value")
        name = line[:cut]
        labels: dict[str, str] = {}
        tail = line[cut:]
    else:
        name = line[:brace].rstrip(" \t")
        labels, end = _scan_labels(line, brace + 1)
        tail = line[end:]
    if not METRIC_NAME_RE.fullmatch(name):
        raise LineError(f"invalid metric name {name!r}")
    if "#" in tail:  # an OpenMetrics exemplar: ` # {labels} value [timestamp]`
        if not openmetrics:
            raise LineError("unexpected '#' after the value")
        tail = tail[: tail.index("#")]
    fields = tail.split()
    if not fields:
        raise LineError("sample without a value")
    if len(fields) > 2:
        raise LineError("too many fields after the labels")
    value = parse_value(fields[0])
    ts = _timestamp(fields[1], openmetrics) if len(fields) == 2 else None
    if labels and "\\" not in line:
        register_shape(shapes, line, name, tuple(labels), relabel, openmetrics)
    if relabel is not None:
        labels = relabel.apply(labels)
    return name, labels, value, ts


def parse_value(text: str) -> float:
    """A Go ParseFloat-style number: decimal, exponent in any case, NaN, +Inf, -Inf."""
    if "_" in text or not text.isascii():
        raise LineError(f"invalid value {text!r}")
    try:
        return float(text)
    except ValueError:
        raise LineError(f"invalid value {text!r}") from None


def _timestamp(text: str, openmetrics: bool) -> int:
    if "_" in text or not text.isascii():
        raise LineError(f"invalid timestamp {text!r}")
    try:
        if openmetrics:  # seconds, possibly fractional
            seconds = float(text)
            if seconds != seconds or abs(seconds) == float("inf"):
                raise ValueError(text)
            return round(seconds * 1000)
        return int(text)  # milliseconds
    except ValueError:
        raise LineError(f"invalid timestamp {text!r}") from None


def _skip_blanks(line: str, pos: int) -> int:
    n = len(line)
    while pos < n and line[pos] in " \t":
        pos += 1
    return pos


def _scan_labels(line: str, pos: int) -> tuple[dict[str, str], int]:
    """Labels from just after ``{``; returns them and the index after ``}``."""
    labels: dict[str, str] = {}
    n = len(line)
    while True:
        pos = _skip_blanks(line, pos)
        if pos >= n:
            raise LineError("unterminated label block")
        if line[pos] == "}":
            return labels, pos + 1
        if labels:
            if line[pos] != ",":
                raise LineError("expected ',' between labels")
            pos = _skip_blanks(line, pos + 1)
            if pos < n and line[pos] == "}":  # a trailing comma
                return labels, pos + 1
        eq = line.find("=", pos)
        if eq < 0:
            raise LineError("label without '='")
        key = line[pos:eq].rstrip(" \t")
        if not LABEL_NAME_RE.fullmatch(key):
            raise LineError(f"invalid label name {key!r}")
        pos = _skip_blanks(line, eq + 1)
        if pos >= n or line[pos] != '"':
            raise LineError(f"label {key!r}: value must be quoted")
        value, pos = _label_value(line, pos + 1, key)
        if key in labels:
            raise LineError(f"duplicate label {key!r}")
        labels[key] = value


def _label_value(line: str, pos: int, key: str) -> tuple[str, int]:
    """An escaped label value from just after its opening quote, and the index after it."""
    chunks: list[str] = []
    while True:
        quote = line.find('"', pos)
        if quote < 0:
            raise LineError(f"label {key!r}: unterminated value")
        slash = line.find("\\", pos, quote)
        if slash < 0:
            chunks.append(line[pos:quote])
            return "".join(chunks), quote + 1
        chunks.append(line[pos:slash])
        escaped = line[slash + 1 : slash + 2]
        if escaped not in _ESCAPES:
            raise LineError(f"label {key!r}: invalid escape '\\{escaped}'")
        chunks.append(_ESCAPES[escaped])
        pos = slash + 2
