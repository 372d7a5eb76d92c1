"""The built-in ``spool`` collector: samples that local programs drop into a directory.

An inference app, a script or a test writes JSON-lines files (one object per line:
``{"name": ..., "labels": {...}, "value": ..., "timestamp_ms": ...}``) to ``<name>.jsonl.tmp``
and renames them to ``<name>.jsonl`` when complete. The collector reads complete files in name
order; the agent calls :meth:`SpoolCollector.acknowledge` once their samples are in the durable
buffer, and only then are the files deleted. A crash in between reads them again: duplicates,
which the uplink's idempotent writes absorb, never a loss.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from fleetwatch.plugins import CollectError, Collector, CollectorCapabilities, CollectResult
from fleetwatch.telemetry import Sample


class SpoolConfig(BaseModel):
    model_config = {"extra": "forbid"}

    directory: Path = Field(..., description="directory the files are dropped into")
    pattern: str = Field("*.jsonl", description="glob of complete files")
    max_files: int = Field(100, ge=1, description="files taken per collection")


def parse_line(line: str) -> Sample:
    """One JSON line to a sample; ValueError says what is wrong."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("line is not a JSON object")
    name, labels, value, ts = (obj.get(k) for k in ("name", "labels", "value", "timestamp_ms"))
    if not isinstance(name, str) or not isinstance(labels, dict):
        raise ValueError("name must be text and labels an object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError("label keys and values must be text")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"value {value!r} is not a number")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError(f"timestamp_ms {ts!r} is not an integer")
    return Sample(name, labels, float(value), ts)


class SpoolCollector(Collector):
    name = "spool"
    config_model = SpoolConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway"}),
        push=True,
        description="JSON-lines files dropped into a directory by local programs",
    )

    def __init__(self, config: BaseModel) -> None:
        super().__init__(config)
        assert isinstance(config, SpoolConfig)
        self.spool = config
        self._taken: list[Path] = []

    def collect(self) -> CollectResult:
        result = CollectResult()
        try:
            files = sorted(self.spool.directory.glob(self.spool.pattern))[: self.spool.max_files]
        except OSError as exc:
            result.errors.append(CollectError(str(self.spool.directory), str(exc)))
            return result
        for path in files:
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                result.errors.append(CollectError(str(path), str(exc)))
                continue
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    result.samples.append(parse_line(line))
                except ValueError as exc:
                    result.errors.append(CollectError(str(path), str(exc), lineno))
            self._taken.append(path)
        return result

    def acknowledge(self) -> None:
        """The samples of the last collection are durable: the files may go."""
        for path in self._taken:
            path.unlink(missing_ok=True)
        self._taken.clear()
