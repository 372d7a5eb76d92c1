"""Safe InfluxQL building. Device ids and label values come from the field: they are only ever
placed in the query as escaped literals, never pasted raw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_STRING_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n"})
_IDENT_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def quote_string(value: str) -> str:
    """A single-quoted InfluxQL string literal for any text."""
    if "\r" in value or "\x00" in value:
        # The InfluxQL scanner has no escape for these; no stored tag can contain them anyway.
        value = value.replace("\r", "\ufffd").replace("\x00", "\ufffd")
    return "'" + value.translate(_STRING_ESCAPES) + "'"


def quote_ident(name: str) -> str:
    """A double-quoted InfluxQL identifier (measurement, tag key, database, policy)."""
    return '"' + name.translate(_IDENT_ESCAPES) + '"'


def where_labels(device: str | None, labels: Mapping[str, str] | None) -> list[str]:
    clauses = []
    if device is not None:
        clauses.append(f'"device" = {quote_string(device)}')
    for key, value in sorted((labels or {}).items()):
        clauses.append(f"{quote_ident(key)} = {quote_string(value)}")
    return clauses


def duration_ms(step_s: float) -> str:
    return f"{max(1, round(step_s * 1000))}ms"


def any_of(tag: str, values: Sequence[str]) -> str:
    """``("tag" = 'a' OR "tag" = 'b')``; an empty list matches nothing."""
    if not values:
        return "false"
    return "(" + " OR ".join(f"{quote_ident(tag)} = {quote_string(v)}" for v in values) + ")"
