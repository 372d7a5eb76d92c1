"""Jetson collector plugins: sysfs (thermal, fan, rails) and tegrastats."""

from __future__ import annotations

import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import IO, ClassVar
from zoneinfo import ZoneInfo

from collectors._common import host_device, read_text
from collectors.jetson.config import JetsonConfig, TegrastatsConfig
from collectors.jetson.sysfs import read_jetson
from collectors.jetson.tegrastats import parse_line
from fleetwatch.plugins import CollectError, Collector, CollectorCapabilities, CollectResult
from fleetwatch.telemetry import now_ms


class JetsonCollector(Collector):
    """Thermal zones by type, trip points, fan PWM and rpm, INA3221 power rails."""

    name: ClassVar[str] = "jetson"
    config_model: ClassVar[type[JetsonConfig]] = JetsonConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway"}),
        description="NVIDIA Jetson sysfs: thermal zones, trip points, fan, INA3221 rails",
    )

    def __init__(self, config: JetsonConfig) -> None:
        super().__init__(config)
        self.config: JetsonConfig = config

    def collect(self) -> CollectResult:
        return read_jetson(
            self.config.sysfs_root,
            device=self.config.device or host_device(),
            site=self.config.site,
        )


class TegrastatsCollector(Collector):
    """Lines of ``tegrastats --interval N`` (a child process) or of its log file."""

    name: ClassVar[str] = "tegrastats"
    config_model: ClassVar[type[TegrastatsConfig]] = TegrastatsConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway"}),
        description="NVIDIA Jetson tegrastats (JetPack 4, 5, 6): CPU, GPU, EMC, memory, "
        "temperatures, power rails",
    )

    def __init__(self, config: TegrastatsConfig) -> None:
        super().__init__(config)
        self.config: TegrastatsConfig = config
        self._tz = ZoneInfo(config.timezone)
        self._device = config.device or host_device()
        self._lines: deque[tuple[str, int]] = deque(maxlen=config.max_lines)
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._offset: int | None = None  # logfile read position
        self._inode: int | None = None

    def collect(self) -> CollectResult:
        result = CollectResult()
        if self.config.file is not None:
            text = read_text(self.config.file, result.errors)
            lines = [(line, now_ms()) for line in (text or "").splitlines()]
            return self._parse(lines, str(self.config.file), result, numbered=True)
        if self.config.logfile is not None:
            return self._parse(
                self._tail(self.config.logfile, result), str(self.config.logfile), result
            )
        self._ensure_process(result)
        lines = []
        while self._lines:
            lines.append(self._lines.popleft())
        return self._parse(lines, " ".join(self.config.command), result)

    def _parse(
        self,
        lines: list[tuple[str, int]],
        source: str,
        result: CollectResult,
        numbered: bool = False,
    ) -> CollectResult:
        for number, (line, received_ms) in enumerate(lines, 1):
            if line.strip():
                result.extend(
                    parse_line(
                        line,
                        device=self._device,
                        site=self.config.site,
                        timestamp_ms=received_ms,
                        tz=self._tz,
                        source=source,
                        line_no=number if numbered else None,
                    )
                )
        return result

    # --- the log file ---------------------------------------------------------------------
    def _tail(self, path: Path, result: CollectResult) -> list[tuple[str, int]]:
        """Complete lines appended since the last call; follows truncation and rotation."""
        try:
            with path.open("rb") as handle:
                stat = path.stat()
                first = self._offset is None
                if first or stat.st_ino != self._inode or stat.st_size < (self._offset or 0):
                    self._inode = stat.st_ino
                    self._offset = max(0, stat.st_size - 8192) if first else 0
                handle.seek(self._offset or 0)
                data = handle.read()
        except OSError as exc:
            result.errors.append(CollectError(str(path), f"cannot read: {exc.strerror or exc}"))
            return []
        end = data.rfind(b"\n") + 1  # keep a half-written last line for next time
        self._offset = (self._offset or 0) + end
        lines = data[:end].decode("utf-8", errors="replace").splitlines()
        if first:
            lines = lines[-1:]
        stamp = now_ms()
        return [(line, stamp) for line in lines]

    # --- the child process ----------------------------------------------------------------
    def _ensure_process(self, result: CollectResult) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        if self._process is not None:
            result.errors.append(
                CollectError(
                    " ".join(self.config.command),
                    f"tegrastats exited with {self._process.returncode}; restarted",
                )
            )
        command = [*self.config.command, "--interval", str(self.config.interval_ms)]
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
            )
        except OSError as exc:
            self._process = None
            result.errors.append(CollectError(command[0], f"cannot run tegrastats: {exc}"))
            return
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read_lines, args=(self._process.stdout,), daemon=True, name="tegrastats"
        )
        self._reader.start()

    def _read_lines(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.append((line.rstrip("\n"), now_ms()))

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
