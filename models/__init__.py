"""Pure numerical models: anomaly detection, peer comparison, forecasting, health scoring.

Everything works on numpy arrays of many series at once (series x time) and keeps its state in
plain arrays, so a periodic task can load the state, score the new points and save it again:

* :func:`detect` / :func:`update` (state: :class:`DetectorState`, ``to_dict``/``from_dict``):
  causal anomaly scores in [0, 1] for spikes, level shifts, trend breaks, stuck sensors and
  dropouts; :func:`score_series` runs the default detector over one ``pandas.Series``.
* :func:`peer_scores`: each device against its cohort at one moment.
* :func:`forecast_time_to_threshold` (with an interval, ``inf`` = no crossing expected) and
  the Prometheus baseline :func:`predict_linear_time_to_threshold`; :func:`forecast_deep_dive`
  for one series with statsmodels.
* :func:`fan_wear`: each fan's speed for its duty cycle against its own best and its peers,
  and when, at its rate of wear, it stops.
* :func:`health_scores`: risk per device with its top contributing signals.

No I/O, no database, no task queue: callers bring the arrays.
"""

from models.anomaly import (
    Detection,
    DetectorConfig,
    DetectorState,
    detect,
    initial_state,
    update,
    update_with_components,
)
from models.deep_dive import DeepDiveForecast, forecast_deep_dive
from models.fans import FanWear, fan_wear
from models.forecast import (
    TimeToThreshold,
    forecast_time_to_threshold,
    predict_linear_time_to_threshold,
)
from models.health import HealthScores, forecast_pressure, health_by_horizon, health_scores
from models.peers import PeerScores, peer_scores
from models.series import score_series

__all__ = [
    "DeepDiveForecast",
    "Detection",
    "DetectorConfig",
    "DetectorState",
    "FanWear",
    "HealthScores",
    "PeerScores",
    "TimeToThreshold",
    "detect",
    "fan_wear",
    "forecast_deep_dive",
    "forecast_pressure",
    "forecast_time_to_threshold",
    "health_by_horizon",
    "health_scores",
    "initial_state",
    "peer_scores",
    "predict_linear_time_to_threshold",
    "score_series",
    "update",
    "update_with_components",
]
