"""Peer comparison: each device against its cohort (same hardware, firmware, site) at one moment.

A Jetson 15 °C hotter than its siblings under the same load is anomalous even when its own
history looks smooth. Per cohort, the robust centre (median) and spread (MAD) of the values
give a robust z per device; an optional covariate such as load is first regressed out within
the cohort, so a device that is hot *because* it is busier is not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models._common import BoolArray, FloatArray, saturate

# MAD of a normal variable is 0.6745 sigma.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class PeerScores:
    """Per device: robust z against its cohort, score in [0, 1], and whether it was scored.

    ``scored`` is False (z NaN, score 0) for missing values and for cohorts with fewer than
    ``min_peers`` other devices reporting: too few to say what normal is.
    """

    z: FloatArray
    score: FloatArray
    scored: BoolArray
    cohort_size: FloatArray

    def to_dict(self) -> dict[str, list[float] | list[bool]]:
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}


def peer_scores(
    values: Any,
    cohorts: Any,
    covariate: Any = None,
    *,
    min_peers: int = 3,
    onset: float = 3.5,
    width: float = 2.5,
    min_scale: float = 0.0,
) -> PeerScores:
    """Score each device against its cohort at one timestamp.

    ``values`` (one per device), ``cohorts`` (any hashable labels, e.g. "xavier-nx/35.4/site-7")
    and optionally a ``covariate`` (e.g. GPU load) of the same length. ``min_scale`` floors the
    cohort spread (in the unit of the values), so identical siblings do not make a 0.1 °C
    difference look extreme. Both directions count; the sign of ``z`` says which.
    """
    x = np.asarray(values, dtype=np.float64)
    labels = np.asarray(cohorts)
    _, cohort_index = np.unique(labels, return_inverse=True)
    cohort_index = cohort_index.reshape(-1)
    cov = None if covariate is None else np.asarray(covariate, dtype=np.float64)
    z = np.full(x.shape, np.nan)
    size = np.zeros(x.shape)
    # Cohorts are few compared with devices; sort once and slice each cohort.
    order = np.argsort(cohort_index, kind="stable")
    bounds = np.flatnonzero(np.diff(cohort_index[order])) + 1
    for members in np.split(order, bounds):
        _score_cohort(x, cov, members, z, size, min_peers, min_scale)
    scored = np.isfinite(z)
    score = np.where(scored, saturate(np.abs(np.nan_to_num(z)), onset, width), 0.0)
    return PeerScores(z=z, score=score, scored=scored, cohort_size=size)


def _score_cohort(
    x: FloatArray,
    cov: FloatArray | None,
    members: Any,
    z: FloatArray,
    size: FloatArray,
    min_peers: int,
    min_scale: float,
) -> None:
    present = members[np.isfinite(x[members])]
    if cov is not None:
        present = present[np.isfinite(cov[present])]
    size[members] = present.size
    if present.size < min_peers + 1:
        return
    y = x[present]
    if cov is not None:
        y = y - _robust_line(cov[present], y)
    centre = np.median(y)
    spread = MAD_TO_SIGMA * np.median(np.abs(y - centre))
    scale = max(spread, min_scale, 1e-9 * (abs(centre) + 1.0))
    z[present] = (y - centre) / scale


def _robust_line(u: FloatArray, y: FloatArray) -> FloatArray:
    """Theil–Sen fit of ``y`` on ``u``: the median of pairwise slopes, robust to the outlier."""
    du = u[:, np.newaxis] - u[np.newaxis, :]
    dy = y[:, np.newaxis] - y[np.newaxis, :]
    upper = np.triu(np.abs(du) > 1e-12, k=1)
    if not upper.any():
        return np.zeros_like(y)
    slope = float(np.median(dy[upper] / du[upper]))
    return np.asarray(slope * (u - np.median(u)), dtype=np.float64)
