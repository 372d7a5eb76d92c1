"""Sample builders compiled per line shape, for the tokenizer's fast path.

A *shape* is a metric name plus its label names in order: ``name{a="…",b="…"} value``. For each
shape the checked path accepts, one small function is generated that takes the line split on
``"`` and returns the finished :class:`~fleetwatch.plugins.Sample`, relabelled (empty values
dropped when the relabelling asks for it), or None when the line is not exactly of that shape
with a plain value (and, in 0.0.4, an optional millisecond timestamp); such lines take the
checked path. Generated code lets CPython build the label dict from a literal with constant
keys, several times faster than ``dict(zip(keys, values))``; it is what ``namedtuple`` and
``dataclasses`` do too. Only validated label names and ``repr()`` literals enter the code.

Shapes repeat from one scrape of a target to the next, so builders are kept in a bounded
module-level table shared by all tokenize calls with the same relabelling and dialect.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from collectors.iotedge import _sample
from fleetwatch.plugins import Sample

if TYPE_CHECKING:
    from collectors.iotedge._labels import Relabel

Builder = Callable[[list[str], int], "Sample | None"]


class Shape:
    """The builders of one head (``name{first=``); usually one, a few for other label orders."""

    __slots__ = ("build", "builders", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.builders: list[Builder] = []
        self.build: Builder = _none

    def add(self, build: Builder) -> None:
        self.builders.append(build)
        if len(self.builders) == 1:
            self.build = build
        else:
            builders = tuple(self.builders)

            def first(parts: list[str], stamp: int) -> Sample | None:
                for candidate in builders:
                    sample = candidate(parts, stamp)
                    if sample is not None:
                        return sample
                return None

            self.build = first


def _none(parts: list[str], stamp: int) -> None:
    return None


Shapes = dict[str, Shape]


def _tail(text: str, stamp: int, timestamps: bool) -> tuple[float, int] | None:
    """The value and timestamp of a tail that is not a plain value, or None to check the line.

    A 0.0.4 timestamp (``timestamps``) is integer milliseconds; OpenMetrics ones (seconds) take
    the checked path.
    """
    fields = text.split()
    k = len(fields)
    if k == 1 or (timestamps and k == 2 and fields[1].isascii() and fields[1].isdigit()):
        value = fields[0]
        if "_" not in value and value.isascii():
            try:
                return float(value), stamp if k == 1 else int(fields[1])
            except ValueError:
                return None
    return None


MAX_SHAPES = 4096  # builders kept across calls; the tables are emptied when they would grow past
_tables: dict[tuple[Relabel | None, bool], Shapes] = {}
_count = 0
_lock = threading.Lock()
_NAMESPACE = {
    "Sample": Sample,
    "new": _sample.object_new,
    "set_name": _sample.set_name,
    "set_labels": _sample.set_labels,
    "set_value": _sample.set_value,
    "set_ts": _sample.set_timestamp,
    "tail": _tail,
}


def shape_table(relabel: Relabel | None, openmetrics: bool) -> Shapes:
    """The head (``name{first=``) -> :class:`Shape` table for one relabelling and dialect."""
    key = (relabel, openmetrics)
    table = _tables.get(key)
    if table is None:
        with _lock:
            table = _tables.setdefault(key, {})
    return table


def clear() -> None:
    """Forget every compiled shape (benchmarks measure a cold start with this)."""
    global _count
    with _lock:
        _tables.clear()
        _count = 0


def register_shape(
    shapes: Shapes,
    line: str,
    name: str,
    keys: tuple[str, ...],
    relabel: Relabel | None,
    openmetrics: bool,
) -> None:
    """Learn the shape of a checked line without backslashes, if it is in canonical form."""
    global _count
    parts = line.split('"')
    if len(parts) != 2 * len(keys) + 1 or parts[0] != f"{name}{{{keys[0]}=":
        return  # blanks or other oddities: such lines keep taking the checked path
    seps = parts[2::2][:-1]
    if any(sep != f",{key}=" for sep, key in zip(seps, keys[1:], strict=True)):
        return
    if not parts[-1].startswith("}"):
        return
    entry = shapes.get(parts[0])
    if entry is not None and len(entry.builders) >= 8:  # many label orders: enough code
        return
    build = _compile(name, keys, relabel, openmetrics)
    with _lock:
        if _count >= MAX_SHAPES:
            for table in _tables.values():
                table.clear()
            _count = 0
        shapes.setdefault(parts[0], Shape(name)).add(build)
        _count += 1


def _compile(
    name: str, keys: tuple[str, ...], relabel: Relabel | None, openmetrics: bool
) -> Builder:
    n = 2 * len(keys) + 1
    checks = [f"len(p) == {n}"]
    checks += [f"p[{2 * i + 2}] == {',' + key + '='!r}" for i, key in enumerate(keys[1:])]
    # stored label -> the index of its value in p, or the constant value of an added label
    values: dict[str, int | str] = {}
    for i, key in enumerate(keys):
        out = key if relabel is None else relabel.out_name(key)
        if out is not None:
            values[out] = 2 * i + 1
    if relabel is not None:
        values.update(relabel.add)
    labels = ", ".join(
        f"{key!r}: {f'p[{v}]' if isinstance(v, int) else repr(v)}" for key, v in values.items()
    )
    drops = _drop_empty(len(keys), values) if relabel is not None and relabel.drop_empty else ""
    # The tail after "}" is usually a plain value between blanks, which float() takes as it is:
    # it skips the same ASCII blanks as str.split(). Any other tail goes field by field.
    source = f"""\
def build(p, stamp):
    if {" and ".join(checks)}:
        e = p[{n - 1}]
        if e[:1] == "}}":
            v = e[1:]
            try:
                if "_" in v or not v.isascii():
                    raise ValueError(v)
                x = float(v)
                t = stamp
            except ValueError:
                fields = tail(v, stamp, {not openmetrics})
                if fields is None:
                    return None
                x, t = fields
            s = new(Sample)
            set_name(s, {name!r})
            d = {{{labels}}}
{drops}            set_labels(s, d)
            set_value(s, x)
            set_ts(s, t)
            return s
    return None
"""
    namespace = dict(_NAMESPACE)
    exec(compile(source, f"<shape {name}{{{','.join(keys)}}}>", "exec"), namespace)
    return namespace["build"]  # type: ignore[no-any-return]


def _drop_empty(count: int, values: dict[str, int | str]) -> str:
    """Statements removing the empty values from ``d``, the label dict built from ``values``.

    An empty exposed value is an empty part between two quotes. When a line has one, every
    label whose value is empty goes, added ones included (the checked path keeps those).
    """
    code = [
        f"if not p[{v}]:\n    del d[{key!r}]\n" for key, v in values.items() if isinstance(v, int)
    ]
    empty_added = [key for key, v in values.items() if v == ""]
    if empty_added:
        code.append(f"if {' or '.join(f'not p[{2 * i + 1}]' for i in range(count))}:\n")
        code.extend(f"    del d[{key!r}]\n" for key in empty_added)
    return textwrap.indent("".join(code), " " * 12)
