"""Reassembly of fleet status messages split into chunks (``chunkInfo``).

The nucleus splits a status message larger than 128,000 bytes into several publishes that
repeat the top-level fields (same ``thing``, ``sequenceNumber`` and ``timestamp``) and share the
``components`` list out, each with ``chunkInfo: {chunkId, totalChunks}``. The assembler keeps
chunks until all have arrived and returns one message with every component. Chunks that never
complete are released after a timeout as a PARTIAL message (the components that did arrive are
real observations; a count of components per state would not be) with an error naming what is
missing. QoS 1 may deliver a chunk twice: duplicates are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from fleetwatch.plugins import CollectError
from fleetwatch.telemetry import now_ms

MAX_CHUNKS = 1000  # far above any real message (128 kB each); bounds memory on bad input


@dataclass(slots=True)
class _Pending:
    total: int
    first_seen_ms: int
    message: dict[str, Any]
    chunks: dict[int, list[Any]] = field(default_factory=dict)


class FleetStatusAssembler:
    """Feed decoded FSS messages in; get whole messages out."""

    def __init__(self, *, timeout_ms: int = 60_000, clock: Callable[[], int] = now_ms) -> None:
        self.timeout_ms = timeout_ms
        self._clock = clock
        self._pending: dict[tuple[Any, ...], _Pending] = {}

    def add(self, obj: Any, source: str = "") -> tuple[list[Any], list[CollectError]]:
        """Messages ready to parse (possibly none yet) and errors about this chunk."""
        if not isinstance(obj, Mapping) or "chunkInfo" not in obj:
            return [obj], []
        info = obj["chunkInfo"]
        chunk_id = info.get("chunkId") if isinstance(info, Mapping) else None
        total = info.get("totalChunks") if isinstance(info, Mapping) else None
        if not (_is_int(chunk_id) and _is_int(total) and 0 <= chunk_id <= total <= MAX_CHUNKS):
            error = CollectError(source, f"invalid chunkInfo {info!r}; parsed as it stands")
            return [_without_chunk_info(obj, "PARTIAL")], [error]
        if total <= 1:
            return [_without_chunk_info(obj, None)], []
        key = (obj.get("thing"), obj.get("sequenceNumber"), obj.get("timestamp"))
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(
                total, self._clock(), _without_chunk_info(obj, None)
            )
        components = obj.get("components")
        pending.chunks.setdefault(chunk_id, components if isinstance(components, list) else [])
        if len(pending.chunks) < pending.total:
            return [], []
        del self._pending[key]
        return [_merge(pending, None)], []

    def expire(self, source: str = "") -> tuple[list[Any], list[CollectError]]:
        """Release chunk sets older than the timeout, as PARTIAL messages."""
        now = self._clock()
        messages: list[Any] = []
        errors: list[CollectError] = []
        for key, pending in list(self._pending.items()):
            if now - pending.first_seen_ms >= self.timeout_ms:
                del self._pending[key]
                messages.append(_merge(pending, "PARTIAL"))
                errors.append(
                    CollectError(
                        source,
                        f"fleet status {key[0]} #{key[1]}: only {len(pending.chunks)} of "
                        f"{pending.total} chunks arrived; kept as a PARTIAL message",
                    )
                )
        return messages, errors

    @property
    def pending(self) -> int:
        return len(self._pending)


def _merge(pending: _Pending, message_type: str | None) -> dict[str, Any]:
    message = dict(pending.message)
    message["components"] = [c for i in sorted(pending.chunks) for c in pending.chunks[i]]
    if message_type is not None:
        message["messageType"] = message_type
    return message


def _without_chunk_info(obj: Mapping[str, Any], message_type: str | None) -> dict[str, Any]:
    message = {k: v for k, v in obj.items() if k != "chunkInfo"}
    if message_type is not None:
        message["messageType"] = message_type
    return message


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
