"""Points of many series on one grid, and the memo that keeps a steady shard's layout."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleetwatch.analysis.engine import ShardState
from fleetwatch.analysis.grid import GridLayout, to_grid

T0 = 1_700_000_040_000  # a whole minute
STEP = 60_000


def _frame(rows: list[tuple[int, float, str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": pd.to_datetime([r[0] for r in rows], unit="ms", utc=True),
            "value": [r[1] for r in rows],
            "device": [r[2] for r in rows],
            "sensor": [r[3] for r in rows],
        }
    )


def test_points_are_averaged_per_step_and_absent_labels_left_out() -> None:
    df = _frame(
        [
            (T0 + 1_000, 1.0, "d1", "cpu"),
            (T0 + 2_000, 3.0, "d1", "cpu"),
            (T0 + STEP + 5, 7.0, "d1", "cpu"),
            (T0 + 10, 5.0, "d2", None),
            (T0 - 1, 99.0, "d2", None),  # before the range
            (T0 + 2 * STEP, 99.0, "d2", None),  # at its end
        ]
    )
    batch = to_grid({"m": df}, start_ms=T0, end_ms=T0 + 2 * STEP, step_ms=STEP)
    assert batch.keys == [
        ("m", (("device", "d1"), ("sensor", "cpu"))),
        ("m", (("device", "d2"),)),
    ]
    np.testing.assert_array_equal(batch.values, [[2.0, 7.0], [5.0, np.nan]])
    assert list(batch.times_ms) == [T0, T0 + STEP]


def test_a_layout_hands_back_the_same_keys_and_follows_new_series() -> None:
    layout = GridLayout()
    first = {"m": _frame([(T0, 1.0, "d1", "cpu"), (T0, 2.0, "d2", "cpu")])}
    a = to_grid(first, start_ms=T0, end_ms=T0 + STEP, step_ms=STEP, layout=layout)
    b = to_grid(first, start_ms=T0, end_ms=T0 + STEP, step_ms=STEP, layout=layout)
    assert b.keys is a.keys
    assert a.keys == to_grid(first, start_ms=T0, end_ms=T0 + STEP, step_ms=STEP).keys
    grown = {
        "m": _frame([(T0, 1.0, "d1", "cpu"), (T0, 3.0, "d1", "gpu"), (T0, 2.0, "d2", "cpu")]),
        "n": _frame([(T0, 4.0, "d3", None)]),
    }
    c = to_grid(grown, start_ms=T0, end_ms=T0 + STEP, step_ms=STEP, layout=layout)
    plain = to_grid(grown, start_ms=T0, end_ms=T0 + STEP, step_ms=STEP)
    assert c.keys == plain.keys and len(c.keys) == 4
    np.testing.assert_array_equal(c.values, plain.values)
    shrunk = to_grid(first, start_ms=T0, end_ms=T0 + STEP, step_ms=STEP, layout=layout)
    assert shrunk.keys == a.keys


def test_state_rows_of_a_key_list_are_remembered_and_new_series_added() -> None:
    state = ShardState.empty(10, T0)
    keys = [("m", (("device", "d1"),)), ("m", (("device", "d2"),))]
    assert list(state.rows_for(keys)) == [0, 1]
    assert list(state.rows_for(list(reversed(keys)))) == [1, 0]
    more = [("m", (("device", "d3"),)), *keys]
    assert list(state.rows_for(more)) == [2, 0, 1]
    assert state.n_series == 3 and list(state.rows_for(keys)) == [0, 1]
