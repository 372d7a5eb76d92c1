"""A shard's state survives the database: saved every cycle, loaded by any worker."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np

import models
from fleetwatch.analysis.engine import _STATE_ARRAYS, ShardState, _encode_keys, advance
from fleetwatch.analysis.grid import GridBatch

T0 = 1_700_000_040_000
STEP = 60_000


def _warm_state(n: int = 30, points: int = 40) -> ShardState:
    rng = np.random.default_rng(4)
    keys = [("m", (("device", f"d{i}"), ("site", "s"))) for i in range(n)]
    state = ShardState.empty(20, T0, models.DetectorConfig(season_buckets=24))
    values = 10 + rng.normal(0, 0.5, (n, points))
    values[3, 5:9] = np.nan
    values[7, -1] += 40  # opens an episode
    times = T0 + STEP * np.arange(points, dtype=np.int64)
    advance(
        state,
        GridBatch(keys=keys, values=values, times_ms=times),
        step_ms=STEP,
        open_level=0.9,
        close_level=0.3,
        close_after=5,
    )
    return state


def _assert_same(a: ShardState, b: ShardState) -> None:
    assert a.keys == b.keys and a.processed_until_ms == b.processed_until_ms
    assert a.detector.config == b.detector.config
    assert a.detector.last_time == b.detector.last_time
    assert a.detector.log_interval == b.detector.log_interval
    for name in (n for n in _STATE_ARRAYS if n != "window"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype
    # The window and the daily profile are kept as float32.
    np.testing.assert_array_equal(a.window.astype(np.float32), b.window)
    for f in dataclasses.fields(models.DetectorState):
        if f.name in ("config", "last_time", "log_interval"):
            continue
        want = getattr(a.detector, f.name)
        if f.name == "season":
            want = want.astype(np.float32)
        np.testing.assert_array_equal(want, getattr(b.detector, f.name))


def test_state_round_trips_and_loads_writable() -> None:
    state = _warm_state()
    assert state.open.any()
    restored = ShardState.from_bytes(state.to_bytes())
    _assert_same(state, restored)
    assert restored.window.dtype == np.float64 and restored.window.flags.writeable
    assert restored.open.flags.writeable and restored.detector.level.flags.writeable
    again = ShardState.from_bytes(restored.to_bytes())
    _assert_same(state, again)
    empty = ShardState.empty(20, T0)
    assert ShardState.from_bytes(empty.to_bytes()).n_series == 0


def test_new_series_are_saved_too() -> None:
    state = _warm_state()
    state.to_bytes()  # the key encoding is remembered...
    state.add_series([("m", (("device", "new"), ("site", "s")))])
    restored = ShardState.from_bytes(state.to_bytes())  # ...and renewed when a series is added
    assert restored.keys == state.keys and restored.n_series == 31


def test_states_saved_as_npz_by_earlier_versions_still_load() -> None:
    state = _warm_state()
    arrays = {
        name: getattr(state, name)
        for name in ("open", "peak", "opened_ms", "quiet", "peer_open", "peer_peak")
    }
    arrays["crossing_since_ms"] = state.crossing_since_ms
    for f in dataclasses.fields(models.DetectorState):
        if f.name not in ("config", "last_time", "log_interval"):
            arrays[f"det_{f.name}"] = getattr(state.detector, f.name)
    arrays["window"] = state.window.astype(np.float32)
    arrays["det_season"] = state.detector.season.astype(np.float32)
    arrays["keys"] = np.frombuffer(_encode_keys(state.keys), dtype=np.uint8)
    meta = {
        "config": dataclasses.asdict(state.detector.config),
        "last_time": state.detector.last_time,
        "log_interval": state.detector.log_interval,
        "processed_until_ms": state.processed_until_ms,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _assert_same(state, ShardState.from_bytes(buffer.getvalue()))


def test_context_metrics_stay_in_the_window_but_open_no_episodes() -> None:
    keys = [(m, (("device", "d"), ("site", "s"))) for m in ("temp", "fan_pwm_ratio")]
    state = ShardState.empty(20, T0, models.DetectorConfig(season_buckets=24))
    values = np.full((2, 40), 0.5)
    values[:, -1] = 40.0  # the same jump on both
    times = T0 + STEP * np.arange(40, dtype=np.int64)
    step = advance(
        state,
        GridBatch(keys=keys, values=values, times_ms=times),
        step_ms=STEP,
        open_level=0.9,
        close_level=0.3,
        close_after=5,
        unscored=frozenset({"fan_pwm_ratio"}),
    )
    assert step.scores[0, -1] > 0.9 and not step.scores[1].any()
    assert [e.row for e in step.events if e.event == "open"] == [0]
    assert state.window[1, -1] == 40.0  # still there for fan wear
