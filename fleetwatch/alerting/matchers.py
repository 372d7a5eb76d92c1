"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) as in Alertmanager, durations, fingerprints.

Pure functions only. Regex matchers are anchored, like Alertmanager's: ``site=~"ber-.*"``
must match the whole value. A missing label matches as the empty string.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(
    r'^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^"\s]*)\s*$'
)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.name}{self.op}: bad regex: {exc}") from None

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(f"(?:{self.value})\\Z")

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._regex.match(actual) is not None
        return hit if self.op == "=~" else not hit

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """``site="ber-1"``, ``severity=~"critical|error"``, ``device!=x`` -> :class:`Matcher`."""
    m = _MATCHER.match(text)
    if m is None:
        raise ValueError(f'cannot parse matcher {text!r}; expected name="value" (=, !=, =~, !~)')
    value = m.group("value")
    if value.startswith('"'):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    op: MatchOp = m.group("op")  # type: ignore[assignment]
    return Matcher(m.group("name"), op, value)


def to_matcher(raw: Any) -> Matcher:
    """Accept a matcher string, a ``{name, op, value}`` mapping or a :class:`Matcher`."""
    if isinstance(raw, Matcher):
        return raw
    if isinstance(raw, str):
        return parse_matcher(raw)
    if isinstance(raw, Mapping):
        op = raw.get("op", "=")
        if op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {op!r}")
        return Matcher(str(raw["name"]), op, str(raw.get("value", "")))
    raise ValueError(f'a matcher is a string like name="value", got {raw!r}')


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


MatcherField = Annotated[Matcher, BeforeValidator(to_matcher)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(raw: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"4h"``, ``"1d"`` or ``"1h30m"``."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if raw < 0:
            raise ValueError("a duration cannot be negative")
        return float(raw)
    if not isinstance(raw, str):
        raise ValueError(f"a duration is a number of seconds or a string like 5m, got {raw!r}")
    total, rest = 0.0, raw.strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", rest)
    if parts and "".join(n + u for n, u in parts) == rest.replace(" ", ""):
        for number, unit in parts:
            total += float(number) * _UNIT_S[unit]
        return total
    m = _DURATION.match(rest)
    if m is None:
        raise ValueError(f"cannot parse duration {raw!r}; use e.g. 30s, 5m, 4h, 1d")
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


Duration = Annotated[float, BeforeValidator(parse_duration)]


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable 16-hex-digit identity of a label set (order-independent)."""
    canonical = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
