"""A hand-written tokenizer for the Prometheus text format 0.0.4 and OpenMetrics 1.0.

Pure: text in, metric families and per-line errors out. Metric and label names are kept exactly
as exposed (``prometheus_client`` renames ``_total`` families; this does not). One bad line is one
:class:`~fleetwatch.plugins.CollectError` and the lines around it are kept.

Each line takes one of two paths. The *checked* path (:mod:`._labels`) validates everything and
unescapes ``\\\\``, ``\\"`` and ``\\n`` in label values; label values may hold ``,``, ``=``,
braces and JSON. A line it accepts also teaches the *fast* path its shape: the metric name and
the label names in order. A line without a backslash cannot hold an escaped quote, so every
``"`` in it is a delimiter and ``line.split('"')`` cuts it into separators and values exactly; if
the separators are those of a known shape, a small function compiled for that shape (see
:mod:`._shapes`) checks them and builds the label dict in one step. Anything unusual falls back to
the checked path, so both paths accept exactly the same lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from collectors.iotedge._labels import METRIC_NAME_RE, LineError, Relabel, parse_sample_line
from collectors.iotedge._sample import new_sample
from collectors.iotedge._shapes import shape_table
from fleetwatch.plugins import CollectError, Sample
from fleetwatch.telemetry import now_ms

__all__ = [
    "Exposition",
    "MetricFamily",
    "Relabel",
    "TYPES",
    "looks_like_openmetrics",
    "tokenize",
]

TYPES = frozenset(
    {
        "counter",
        "gauge",
        "histogram",
        "summary",
        "untyped",
        "unknown",
        "gaugehistogram",
        "stateset",
        "info",
    }  # the last four: OpenMetrics only
)
# Sample-name suffixes a family of each type may expose besides its own name.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}
_ALL_SUFFIXES = ("_total", "_created", "_sum", "_count", "_bucket", "_gsum", "_gcount", "_info")


@dataclass(slots=True)
class MetricFamily:
    name: str
    type: str = "untyped"
    help: str = ""
    unit: str = ""
    samples: list[Sample] = field(default_factory=list)


@dataclass(slots=True)
class Exposition:
    """The families of one exposition in order of first appearance, and the bad lines."""

    families: dict[str, MetricFamily]
    errors: list[CollectError]
    openmetrics: bool

    def samples(self) -> list[Sample]:
        return [s for fam in self.families.values() for s in fam.samples]


def looks_like_openmetrics(text: str) -> bool:
    """OpenMetrics bodies end with a ``# EOF`` line; 0.0.4 bodies have none."""
    return text.startswith("# EOF") or "\n# EOF" in text


def tokenize(
    text: str,
    *,
    source: str = "",
    openmetrics: bool | None = None,
    relabel: Relabel | None = None,
    timestamp_ms: int | None = None,
) -> Exposition:
    """Tokenize one exposition. Never raises on bad input: bad lines become errors.

    Samples are :class:`~fleetwatch.plugins.Sample` objects with the exposed name, the exposed
    labels (or relabelled ones) and the exposed timestamp, else ``timestamp_ms`` (default: now).
    ``openmetrics`` chooses the dialect (timestamps in seconds, ``# EOF``, ``# UNIT``,
    exemplars); ``None`` guesses from a trailing ``# EOF``. ``relabel`` renames, drops and adds
    labels while tokenizing, where it costs nothing; without it labels are kept as exposed.
    """
    stamp = now_ms() if timestamp_ms is None else timestamp_ms
    if openmetrics is None:
        # looks_like_openmetrics() reads the whole text: look at its end only, and if that is
        # no # EOF line, tokenize as 0.0.4 and start over should a # EOF line turn up after all
        if text.startswith("# EOF") or text.find("\n# EOF", max(0, len(text) - 64)) >= 0:
            openmetrics = True
        else:
            try:
                return _tokenize(text, source, False, relabel, stamp, eof_means_openmetrics=True)
            except _OpenMetrics:
                openmetrics = True
    return _tokenize(text, source, openmetrics, relabel, stamp)


class _OpenMetrics(Exception):
    """A # EOF line in an exposition tokenized as 0.0.4 because its end has none."""


def _tokenize(
    text: str,
    source: str,
    openmetrics: bool,
    relabel: Relabel | None,
    stamp: int,
    *,
    eof_means_openmetrics: bool = False,
) -> Exposition:
    families: dict[str, MetricFamily] = {}
    errors: list[CollectError] = []
    by_sample_name: dict[str, MetricFamily] = {}
    shapes = shape_table(relabel, openmetrics)
    eof = False
    lineno = 0
    last_name: str | None = None  # the family the fast path appended to last, and its append
    unused: list[Sample] = []
    append: Callable[[Sample], None] = unused.append  # replaced before the first use
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line[0] == "#":
            if eof_means_openmetrics and line.startswith("# EOF"):
                raise _OpenMetrics
            if eof:
                errors.append(CollectError(source, "content after # EOF", lineno))
                continue
            try:
                eof = _comment(line.rstrip("\r"), families)
            except LineError as exc:
                errors.append(CollectError(source, str(exc), lineno))
            by_sample_name.clear()  # a TYPE line can change which family a name belongs to
            last_name = None
            continue
        if "\\" not in line and not eof:  # the fast path
            parts = line.split('"')
            shape = shapes.get(parts[0])
            if shape is not None:
                sample = shape.build(parts, stamp)
                if sample is not None:  # relabelled, empty values dropped, by the builder
                    if shape.name is not last_name:  # families are contiguous: rarely taken
                        last_name = shape.name
                        fam = by_sample_name.get(last_name)
                        if fam is None:
                            fam = by_sample_name[last_name] = _family_of(last_name, families)
                        append = fam.samples.append
                    append(sample)
                    continue
        # The checked path.
        line = line.strip(" \t\r")
        if not line:
            continue
        if eof:
            errors.append(CollectError(source, "content after # EOF", lineno))
            continue
        if line[0] == "#":  # a comment after leading blanks
            try:
                eof = _comment(line, families)
            except LineError as exc:
                errors.append(CollectError(source, str(exc), lineno))
            by_sample_name.clear()
            last_name = None
            continue
        try:
            name, labels, value, ts = parse_sample_line(line, shapes, openmetrics, relabel)
        except LineError as exc:
            errors.append(CollectError(source, f"{exc}: {_clip(line)}", lineno))
            continue
        except (ValueError, IndexError) as exc:  # defensive: anything the checks missed
            errors.append(CollectError(source, f"malformed sample ({exc}): {_clip(line)}", lineno))
            continue
        fam = by_sample_name.get(name)
        if fam is None:
            fam = by_sample_name[name] = _family_of(name, families)
        fam.samples.append(new_sample(name, labels, value, stamp if ts is None else ts))
    if openmetrics and not eof and text.strip():
        errors.append(
            CollectError(source, "OpenMetrics exposition does not end with # EOF", lineno)
        )
    return Exposition(families, errors, openmetrics)


def _clip(line: str, width: int = 120) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _family_of(name: str, families: dict[str, MetricFamily]) -> MetricFamily:
    fam = families.get(name)
    if fam is not None and fam.type not in ("histogram", "gaugehistogram"):
        return fam
    for suffix in _ALL_SUFFIXES:
        if name.endswith(suffix):
            base = families.get(name[: -len(suffix)])
            if base is not None and suffix in _SUFFIXES.get(base.type, ()):
                return base
    if fam is None:  # unknown families are kept, untyped, under the exposed name
        fam = families[name] = MetricFamily(name)
    return fam


def _comment(line: str, families: dict[str, MetricFamily]) -> bool:
    """Handle a ``#`` line; return True on ``# EOF``."""
    parts = line[1:].split(None, 2)
    if not parts:
        return False
    keyword = parts[0]
    if keyword == "EOF" and len(parts) == 1:
        return True
    if keyword not in ("HELP", "TYPE", "UNIT"):
        return False  # a plain comment
    if len(parts) < 2:
        raise LineError(f"# {keyword} without a metric name")
    name = parts[1]
    if not METRIC_NAME_RE.fullmatch(name):
        raise LineError(f"# {keyword}: invalid metric name {name!r}")
    rest = parts[2] if len(parts) > 2 else ""
    fam = families.get(name)
    if fam is None:
        fam = families[name] = MetricFamily(name)
    if keyword == "HELP":
        fam.help = _unescape_help(rest) if "\\" in rest else rest
    elif keyword == "TYPE":
        kind = rest.strip()
        if kind not in TYPES:
            raise LineError(f"# TYPE {name}: unknown type {kind!r}")
        if fam.samples:
            raise LineError(f"# TYPE {name} comes after samples of that family")
        if fam.type != "untyped" and fam.type != kind:
            raise LineError(f"# TYPE {name} declared twice ({fam.type}, {kind})")
        fam.type = "untyped" if kind == "unknown" else kind
    else:
        fam.unit = rest.strip()
    return False


def _unescape_help(text: str) -> str:
    """``\\\\`` and ``\\n`` (and OpenMetrics' ``\\"``); any other backslash is kept."""
    out: list[str] = []
    i = 0
    while True:
        j = text.find("\\", i)
        if j < 0 or j + 1 >= len(text):
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        escaped = text[j + 1]
        out.append({"\\": "\\", "n": "\n", '"': '"'}.get(escaped, text[j : j + 2]))
        i = j + 2
