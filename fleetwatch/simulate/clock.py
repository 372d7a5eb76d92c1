"""Pacing simulated time against the wall clock."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Releases tick ``k`` at ``k * step_s / speed`` wall seconds after :meth:`start`.

    ``speed=None`` means as fast as possible (tests, benchmarks); ``speed=1`` is real time.
    A pacer that falls behind does not sleep, and says by how much it is late.
    """

    def __init__(self, step_s: float, speed: float | None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        self.step_s = step_s
        self.speed = speed
        self._t0 = time.monotonic()

    def start(self) -> None:
        self._t0 = time.monotonic()

    @property
    def wall_elapsed_s(self) -> float:
        return time.monotonic() - self._t0

    def due(self, tick: int) -> float:
        """Wall seconds after start at which ``tick`` is due."""
        return 0.0 if self.speed is None else tick * self.step_s / self.speed

    def lag_s(self, tick: int) -> float:
        return max(0.0, self.wall_elapsed_s - self.due(tick))

    def wait(self, tick: int, stop: threading.Event | None = None) -> bool:
        """Sleep until ``tick`` is due; False if ``stop`` was set meanwhile."""
        delay = self.due(tick) - self.wall_elapsed_s
        if delay <= 0:
            return not (stop is not None and stop.is_set())
        if stop is None:
            time.sleep(delay)
            return True
        return not stop.wait(delay)
