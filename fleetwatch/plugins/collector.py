"""The collector contract.

A collector turns one telemetry source into samples. To add one:

1. Create ``collectors/<source>/`` with ``parse.py`` (pure functions: text/JSON/sysfs in, samples
   and errors out), ``config.py`` (a pydantic model with described fields) and ``plugin.py``
   (a thin :class:`Collector` subclass that does the I/O and calls the parser). Copy
   ``collectors/coral`` — the smallest complete example.
2. Declare it in ``pyproject.toml`` under ``[project.entry-points."fleetwatch.collectors"]``.
3. Test the parser on real-format fixtures and on hypothesis-generated garbage.

Collectors never raise on bad input: every malformed line, field or file becomes a
:class:`CollectError` in the result and the good samples beside it are kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import BaseModel

from fleetwatch.telemetry import Sample

Placement = Literal["gateway", "central"]


@dataclass(frozen=True, slots=True)
class CollectorCapabilities:
    """What a collector can do, as data rather than reflection."""

    placements: frozenset[Placement]
    push: bool = False  # True when the source pushes (MQTT) and collect() drains what arrived
    description: str = ""


@dataclass(frozen=True, slots=True)
class CollectError:
    """One malformed line, field, file or failed request; the rest of the collection is kept."""

    source: str  # a URL, file path, topic or API operation
    message: str
    line: int | None = None  # 1-based line number when the source is text


@dataclass(slots=True)
class CollectResult:
    samples: list[Sample] = field(default_factory=list)
    errors: list[CollectError] = field(default_factory=list)
    # Notable events that are not errors, e.g. a counter reset on a new IoT Edge instance_number.
    events: list[str] = field(default_factory=list)

    def extend(self, other: CollectResult) -> None:
        self.samples.extend(other.samples)
        self.errors.extend(other.errors)
        self.events.extend(other.events)


class Collector(ABC):
    """Base class of every collector plugin."""

    plugin_group: ClassVar[str] = "fleetwatch.collectors"
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    capabilities: ClassVar[CollectorCapabilities]

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @abstractmethod
    def collect(self) -> CollectResult:
        """Run one collection and return its samples and errors. Must not raise on bad input."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or subprocesses."""
