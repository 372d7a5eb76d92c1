"""One shard's analysis state and the step that advances it by a batch of grid points.

This module holds the numerical glue between the store's data and ``models``: which rows are
which series, the trailing window the forecaster needs, and which anomaly episodes are open.
It does no I/O; :mod:`fleetwatch.analysis.service` loads and persists it.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import models
from fleetwatch.analysis.grid import GridBatch
from fleetwatch.telemetry import SeriesKey

_STATE_ARRAYS = (
    "window",
    "open",
    "peak",
    "opened_ms",
    "quiet",
    "peer_open",
    "peer_peak",
    "crossing_since_ms",
)


@dataclass
class ShardState:
    """Detector state, forecast window and episode bookkeeping for the series of one shard."""

    keys: list[SeriesKey]
    detector: models.DetectorState
    window: np.ndarray  # (n, window_points) trailing grid values, NaN-padded
    open: np.ndarray  # bool: an anomaly episode is open
    peak: np.ndarray
    opened_ms: np.ndarray  # float64 ms, NaN when closed
    quiet: np.ndarray  # quiet points since the score fell below the close level
    peer_open: np.ndarray
    peer_peak: np.ndarray
    crossing_since_ms: np.ndarray  # when a crossing was first forecast (NaN: none forecast)
    processed_until_ms: int
    index: dict[SeriesKey, int] = field(default_factory=dict)
    # The rows of the last batch's key list (a shard reads the same series every cycle).
    _batch_rows: tuple[list[SeriesKey], np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # The device label of each series, in row order (series are only ever appended).
    _devices: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    # The encoded keys and how many keys they hold (saved every cycle, changed rarely).
    _keys_blob: tuple[int, bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.index = {key: i for i, key in enumerate(self.keys)}

    @classmethod
    def empty(
        cls,
        window_points: int,
        processed_until_ms: int,
        config: models.DetectorConfig | None = None,
    ) -> ShardState:
        return cls(
            keys=[],
            detector=models.initial_state(0, config),
            window=np.empty((0, window_points)),
            open=np.zeros(0, dtype=bool),
            peak=np.zeros(0),
            opened_ms=np.zeros(0),
            quiet=np.zeros(0),
            peer_open=np.zeros(0, dtype=bool),
            peer_peak=np.zeros(0),
            crossing_since_ms=np.zeros(0),
            processed_until_ms=processed_until_ms,
        )

    @property
    def n_series(self) -> int:
        return len(self.keys)

    def devices(self) -> list[str]:
        """The ``device`` label of every series in row order ("" where none), worked out once
        per series rather than on every cycle."""
        memo = self._devices
        for _, labels in self.keys[len(memo) :]:
            memo.append(next((v for k, v in labels if k == "device"), ""))
        return memo

    def add_series(self, keys: list[SeriesKey]) -> None:
        """Append series seen for the first time, with fresh detector state."""
        new = [k for k in keys if k not in self.index]
        if not new:
            return
        fresh = models.initial_state(len(new), self.detector.config)
        if self.n_series == 0:
            fresh.last_time = self.detector.last_time
            fresh.log_interval = self.detector.log_interval
            self.detector = fresh
        else:
            joined = {
                name: np.concatenate(
                    [getattr(self.detector, name), getattr(fresh, name)],
                    axis=1 if name == "season" else 0,
                )
                for name in _detector_arrays()
            }
            self.detector = dataclasses.replace(self.detector, **joined)  # type: ignore[arg-type]
        n = len(new)
        self.window = np.vstack([self.window, np.full((n, self.window.shape[1]), np.nan)])
        self.open = np.concatenate([self.open, np.zeros(n, dtype=bool)])
        self.peak = np.concatenate([self.peak, np.zeros(n)])
        self.opened_ms = np.concatenate([self.opened_ms, np.full(n, np.nan)])
        self.quiet = np.concatenate([self.quiet, np.zeros(n)])
        self.peer_open = np.concatenate([self.peer_open, np.zeros(n, dtype=bool)])
        self.peer_peak = np.concatenate([self.peer_peak, np.zeros(n)])
        self.crossing_since_ms = np.concatenate([self.crossing_since_ms, np.full(n, np.nan)])
        for key in new:
            self.index[key] = len(self.keys)
            self.keys.append(key)

    def rows_for(self, keys: list[SeriesKey]) -> np.ndarray:
        """State rows of ``keys``, adding the series seen for the first time.

        Rows never move (series are only appended), so the answer for an equal key list is
        remembered: comparing a list that holds the very same key objects is a pointer check
        per key, far cheaper than hashing every key again.
        """
        cached = self._batch_rows
        if cached is not None and cached[0] == keys:
            return cached[1]
        self.add_series(keys)
        rows = np.fromiter((self.index[k] for k in keys), dtype=np.int64, count=len(keys))
        self._batch_rows = (keys, rows)
        return rows

    # -- persistence -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The state as one blob: a JSON header, then every array's raw bytes.

        Written every cycle for every shard, so it is one copy of each array and nothing more
        (no zip, no checksum): a shard's state is tens of megabytes.
        """
        arrays: dict[str, np.ndarray] = {name: getattr(self, name) for name in _STATE_ARRAYS}
        for name in _detector_arrays():
            arrays[f"det_{name}"] = getattr(self.detector, name)
        # The window and the daily profile are most of the bytes; float32 keeps them exact to
        # seven digits, far below the noise of any sensor.
        arrays["window"] = self.window.astype(np.float32)
        arrays["det_season"] = self.detector.season.astype(np.float32)
        arrays["keys"] = np.frombuffer(self._encoded_keys(), dtype=np.uint8)
        meta = {
            "config": dataclasses.asdict(self.detector.config),
            "last_time": self.detector.last_time,
            "log_interval": self.detector.log_interval,
            "processed_until_ms": self.processed_until_ms,
        }
        layout: list[list[Any]] = []
        chunks: list[Any] = []
        offset = 0
        for name, array in arrays.items():
            data = np.ascontiguousarray(array)
            layout.append([name, data.dtype.str, list(data.shape), offset])
            chunks.append(data.data.cast("B") if data.size else b"")
            pad = -data.nbytes % 8
            chunks.append(b"\0" * pad)
            offset += data.nbytes + pad
        head = json.dumps({"meta": meta, "arrays": layout}).encode()
        head += b" " * (-(len(_MAGIC) + 8 + len(head)) % 8)
        return b"".join([_MAGIC, len(head).to_bytes(8, "little"), head, *chunks])

    def _encoded_keys(self) -> bytes:
        """The keys' encoding, remembered while no series is added (they rarely are)."""
        known = self._keys_blob
        if known is None or known[0] != len(self.keys):
            known = (len(self.keys), _encode_keys(self.keys))
            self._keys_blob = known
        return known[1]

    @classmethod
    def from_bytes(cls, blob: bytes) -> ShardState:
        data, meta = _read_blob(blob)
        detector = models.DetectorState(
            config=models.DetectorConfig(**meta["config"]),
            last_time=float(meta["last_time"]),
            log_interval=float(meta["log_interval"]),
            **{name: data[f"det_{name}"].astype(np.float64) for name in _detector_arrays()},
        )
        # Copies: the state is updated in place, and must not pin the blob.
        arrays: dict[str, Any] = {name: np.array(data[name]) for name in _STATE_ARRAYS}
        arrays["window"] = data["window"].astype(np.float64)
        encoded = bytes(data["keys"])
        state = cls(
            keys=_decode_keys(encoded),
            detector=detector,
            processed_until_ms=int(meta["processed_until_ms"]),
            **arrays,
        )
        state._keys_blob = (state.n_series, encoded)
        return state


_MAGIC = b"FWSTATE1"


def _read_blob(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (read-only views into ``blob``) and the meta of a state blob; blobs saved as
    ``.npz`` before the raw layout are read too."""
    if not blob.startswith(_MAGIC):
        with np.load(io.BytesIO(blob)) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return arrays, json.loads(bytes(arrays.pop("meta")).decode())
    size = int.from_bytes(blob[len(_MAGIC) : len(_MAGIC) + 8], "little")
    base = len(_MAGIC) + 8 + size
    head = json.loads(bytes(blob[len(_MAGIC) + 8 : base]).decode())
    arrays = {}
    for name, dtype, shape, offset in head["arrays"]:
        count = int(np.prod(shape, dtype=np.int64))
        view = np.frombuffer(blob, dtype=np.dtype(dtype), count=count, offset=base + offset)
        arrays[name] = view.reshape(shape)
    return arrays, head["meta"]


def _encode_keys(keys: list[SeriesKey]) -> bytes:
    """Series keys as NUL-separated text: metric, label count, then key/value pairs.

    NUL cannot occur in a metric name or a label (sample validation refuses it), so the
    encoding is unambiguous — and splitting one string is far cheaper than JSON per key.
    """
    parts: list[str] = []
    for metric, labels in keys:
        parts.append(metric)
        parts.append(str(len(labels)))
        for k, v in labels:
            parts.append(k)
            parts.append(v)
    return "\0".join(parts).encode()


def _decode_keys(blob: bytes) -> list[SeriesKey]:
    if not blob:
        return []
    parts = blob.decode().split("\0")
    keys: list[SeriesKey] = []
    i = 0
    while i < len(parts):
        metric, n = parts[i], int(parts[i + 1])
        i += 2
        labels = tuple(zip(parts[i : i + 2 * n : 2], parts[i + 1 : i + 2 * n : 2], strict=True))
        keys.append((metric, labels))
        i += 2 * n
    return keys


def _detector_arrays() -> list[str]:
    """The array fields of the detector state (everything but config and clock scalars)."""
    return [
        f.name
        for f in dataclasses.fields(models.DetectorState)
        if f.name not in ("config", "last_time", "log_interval")
    ]


@dataclass(frozen=True)
class EpisodeEvent:
    row: int
    kind: str  # anomaly | peer
    event: str  # open | update | close
    at_ms: int
    score: float
    peak: float


@dataclass(frozen=True)
class Step:
    """What one batch changed: scores and episode events (rows index ``state.keys``)."""

    scores: np.ndarray  # (n_series, n_steps)
    last_scores: np.ndarray  # (n_series,) score at the last step with data
    events: list[EpisodeEvent]


def advance(
    state: ShardState,
    batch: GridBatch,
    *,
    step_ms: int,
    open_level: float,
    close_level: float,
    close_after: int,
    unscored: frozenset[str] = frozenset(),
) -> Step:
    """Score a batch, roll the forecast window forward and open/close anomaly episodes.

    Series of the shard that sent nothing in this batch get NaN columns: a silent series is
    scored as a dropout, not skipped. Series of the ``unscored`` metrics are kept in the
    window for other signals; their scores are 0 and they open no episodes.
    """
    rows = state.rows_for(batch.keys)
    n_steps = batch.values.shape[1]
    full = np.full((state.n_series, n_steps), np.nan)
    if batch.keys:
        full[rows] = batch.values
    if state.n_series == 0 or n_steps == 0:
        return Step(scores=full, last_scores=np.zeros(state.n_series), events=[])
    seconds = batch.times_ms.astype(np.float64) / 1000.0
    scores, detector = models.update(state.detector, full, seconds)
    state.detector = detector
    if unscored:
        scores[[metric in unscored for metric, _ in state.keys]] = 0.0
    state.window = _roll(state.window, full)
    if len(batch.times_ms):
        state.processed_until_ms = int(batch.times_ms[-1]) + step_ms
    events = _episodes(state, scores, batch.times_ms, open_level, close_level, close_after)
    last = scores[:, -1] if n_steps else np.zeros(state.n_series)
    return Step(scores=scores, last_scores=last, events=events)


def _roll(window: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The window moved on by the new columns (the oldest drop out), in one new array."""
    width, k = window.shape[1], min(new.shape[1], window.shape[1])
    out = np.empty_like(window)
    out[:, : width - k] = window[:, k:]
    out[:, width - k :] = new[:, new.shape[1] - k :]
    return out


def _episodes(
    state: ShardState,
    scores: np.ndarray,
    times_ms: np.ndarray,
    open_level: float,
    close_level: float,
    close_after: int,
) -> list[EpisodeEvent]:
    events: list[EpisodeEvent] = []
    if scores.size == 0:
        return events
    above = scores >= open_level
    candidates = np.flatnonzero(above.any(axis=1) | state.open)
    for row in candidates.tolist():
        for j in range(scores.shape[1]):
            score = float(scores[row, j])
            at = int(times_ms[j])
            if not state.open[row]:
                if score >= open_level:
                    state.open[row] = True
                    state.peak[row] = score
                    state.opened_ms[row] = at
                    state.quiet[row] = 0
                    events.append(EpisodeEvent(row, "anomaly", "open", at, score, score))
                continue
            state.peak[row] = max(state.peak[row], score)
            state.quiet[row] = state.quiet[row] + 1 if score < close_level else 0
            if state.quiet[row] >= close_after:
                state.open[row] = False
                events.append(
                    EpisodeEvent(row, "anomaly", "close", at, score, float(state.peak[row]))
                )
                state.opened_ms[row] = np.nan
        if state.open[row]:
            last = float(scores[row, -1])
            events.append(
                EpisodeEvent(
                    row, "anomaly", "update", int(times_ms[-1]), last, float(state.peak[row])
                )
            )
    return events
