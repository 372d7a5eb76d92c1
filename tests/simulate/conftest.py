"""Shared helpers of the simulator tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetwatch.simulate import SimConfig, Simulator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def value_of(sim: Simulator, series: dict[str, Any]) -> float | None:
    """The canonical value of one series at the current tick (None when absent)."""
    return sim.value(series["name"], series["labels"])


def first(sim: Simulator, pred: Any) -> Any:
    return next(d for d in sim.devices if pred(d))


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimConfig(devices=60, sites=3, seed=11))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
