"""A parser for ``tegrastats`` lines of JetPack 4, 5 and 6 (and the JetPack 7 forms seen).

One line in, samples and per-field errors out: a field that is recognised but malformed is one
:class:`CollectError` and the other fields of the line are kept. Fields this does not know are
skipped silently (tegrastats grows new engines with every release).

JetPack 5+ lines start with ``MM-DD-YYYY HH:MM:SS`` in the device's local time (pass ``tz``);
JetPack 4 lines have no timestamp and take ``timestamp_ms``. Rails are milliwatts with or
without ``mW``; ``-256C`` is an offline sensor; ``off`` is an offline core or a gated engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo

from fleetwatch.plugins import CollectError, CollectResult, make_sample
from fleetwatch.telemetry import now_ms

OFFLINE_CELSIUS = -40.0  # at or below: the sensor is powered off (tegrastats prints -256C)
_UNITS = {"kB": 1024, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_DATE_RE = re.compile(r"(\d\d)-(\d\d)-(\d{4})$")
_TIME_RE = re.compile(r"(\d\d):(\d\d):(\d\d)$")
_MEMORY_RE = re.compile(r"(\d+)/(\d+)(kB|KB|MB|GB)(?:\(.*)?$")
_PERCENT_AT_RE = re.compile(r"(\d+)%(?:@(\d+))?$")
_GPU_RE = re.compile(r"(?:(\d+)%)?(?:@(?:\[([\d,]*)\]|(\d+)))?$")
_CORE_RE = re.compile(r"(\d+)%(?:@(\d+))?$")
_TEMP_RE = re.compile(r"([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)*$")
_RAIL_VALUE_RE = re.compile(r"(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?$")
_ENGINE_VALUE_RE = re.compile(r"off$|(\d+)%@(\d+)$|(\d+)$")
_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*$")
_SKIP = {"MTS": 4}  # MTS fg x% bg y%: tokens to skip after the keyword


def parse_line(
    line: str,
    *,
    device: str = "",
    site: str = "default",
    timestamp_ms: int | None = None,
    tz: tzinfo = UTC,
    source: str = "tegrastats",
    line_no: int | None = None,
) -> CollectResult:
    """One tegrastats line. ``device`` defaults to this host's name."""
    if not device:
        from collectors._common import host_device

        device = host_device()
    return _LineParser(line, device, site, timestamp_ms, tz, source, line_no).run()


def parse_lines(
    lines: Iterable[str],
    *,
    device: str = "",
    site: str = "default",
    timestamp_ms: int | None = None,
    tz: tzinfo = UTC,
    source: str = "tegrastats",
) -> CollectResult:
    """Several lines (a log file); blank lines are skipped, line numbers start at 1."""
    result = CollectResult()
    for number, line in enumerate(lines, 1):
        if line.strip():
            result.extend(
                parse_line(
                    line,
                    device=device,
                    site=site,
                    timestamp_ms=timestamp_ms,
                    tz=tz,
                    source=source,
                    line_no=number,
                )
            )
    return result


class _LineParser:
    __slots__ = ("base", "line_no", "result", "source", "tokens", "ts")

    def __init__(
        self,
        line: str,
        device: str,
        site: str,
        timestamp_ms: int | None,
        tz: tzinfo,
        source: str,
        line_no: int | None,
    ) -> None:
        self.tokens = line.split()
        self.result = CollectResult()
        self.source = source
        self.line_no = line_no
        self.base = {"device": device, "site": site}
        self.ts = self._timestamp(tz, now_ms() if timestamp_ms is None else timestamp_ms)

    def error(self, message: str) -> None:
        self.result.errors.append(CollectError(self.source, message, self.line_no))

    def add(self, name: str, value: float, **labels: str) -> None:
        self.result.samples.append(make_sample(name, {**self.base, **labels}, value, self.ts))

    def _timestamp(self, tz: tzinfo, fallback: int) -> int:
        toks = self.tokens
        if (
            len(toks) >= 2
            and (date := _DATE_RE.match(toks[0]))
            and (clock := _TIME_RE.match(toks[1]))
        ):
            del toks[:2]
            month, day, year = (int(g) for g in date.groups())
            hour, minute, second = (int(g) for g in clock.groups())
            try:
                when = datetime(year, month, day, hour, minute, second, tzinfo=tz)
            except ValueError as exc:
                self.error(f"timestamp: {exc}")
                return fallback
            return int(when.timestamp() * 1000)
        return fallback

    def run(self) -> CollectResult:
        toks = self.tokens
        i = 0
        n = len(toks)
        while i < n:
            token = toks[i]
            following = toks[i + 1] if i + 1 < n else ""
            handler = _KEYWORDS.get(token)
            if handler is not None:
                handler(self, following)
                i += 2
            elif token in _SKIP:
                i += 1 + _SKIP[token]
            elif "@" in token and token.endswith("C") and token[0].isalpha():
                self._temperature(token)
                i += 1
            elif following and _NAME_RE.match(token) and _RAIL_VALUE_RE.match(following):
                self._rail(token, following)
                i += 2
            elif following and _NAME_RE.match(token) and _ENGINE_VALUE_RE.match(following):
                self._engine(token, following)
                i += 2
            else:
                i += 1  # lfb figures, cached swap, and fields this parser does not know
        return self.result

    # --- fields -------------------------------------------------------------------------
    def _memory(self, keyword: str, prefix: str, text: str) -> None:
        match = _MEMORY_RE.match(text)
        if match is None:
            self.error(f"{keyword}: cannot read {text!r}")
            return
        unit = _UNITS[match.group(3)]
        self.add(f"{prefix}_used_bytes", int(match.group(1)) * unit)
        self.add(f"{prefix}_total_bytes", int(match.group(2)) * unit)

    def ram(self, text: str) -> None:
        self._memory("RAM", "memory", text)

    def swap(self, text: str) -> None:
        self._memory("SWAP", "swap", text)

    def iram(self, text: str) -> None:
        pass  # T210 only, as root: not a fleet-wide signal

    def cpu(self, text: str) -> None:
        if not (text.startswith("[") and text.endswith("]")):
            self.error(f"CPU: cannot read {text!r}")
            return
        loads: list[float] = []
        for core, field in enumerate(text[1:-1].split(",")):
            label = str(core)
            if field == "off":
                self.add("cpu_core_online", 0, core=label)
                continue
            match = _CORE_RE.match(field)
            if match is None:
                self.error(f"CPU core {core}: cannot read {field!r}")
                continue
            load = int(match.group(1)) / 100
            loads.append(load)
            self.add("cpu_core_online", 1, core=label)
            self.add("cpu_utilization_ratio", load, core=label)
            if match.group(2):
                self.add("cpu_frequency_hertz", int(match.group(2)) * 1e6, core=label)
        if loads:
            self.add("cpu_utilization_ratio", sum(loads) / len(loads))

    def emc(self, text: str) -> None:
        match = _PERCENT_AT_RE.match(text)
        if match is None:
            self.error(f"EMC_FREQ: cannot read {text!r}")
            return
        self.add("emc_utilization_ratio", int(match.group(1)) / 100)
        if match.group(2):
            self.add("emc_frequency_hertz", int(match.group(2)) * 1e6)

    def gpu(self, text: str) -> None:
        match = _GPU_RE.match(text)
        if match is None or not text:
            self.error(f"GR3D_FREQ: cannot read {text!r}")
            return
        load, per_gpc, single = match.groups()
        if load is not None:
            self.add("gpu_utilization_ratio", int(load) / 100)
        frequencies = [f for f in (per_gpc or "").split(",") if f] or ([single] if single else [])
        for gpc, mhz in enumerate(frequencies):
            self.add("gpu_frequency_hertz", int(mhz) * 1e6, gpc=str(gpc))

    def _temperature(self, token: str) -> None:
        match = _TEMP_RE.match(token)
        if match is None:
            self.error(f"temperature: cannot read {token!r}")
            return
        sensor = match.group(1).lower()
        celsius = float(match.group(2))
        online = celsius > OFFLINE_CELSIUS
        self.add("temperature_sensor_up", float(online), sensor=sensor)
        if online:
            self.add("temperature_celsius", celsius, sensor=sensor)

    def _rail(self, name: str, text: str) -> None:
        if name == "NC":
            return  # an unconnected INA3221 channel
        match = _RAIL_VALUE_RE.match(text)
        assert match is not None
        self.add("power_watts", int(match.group(1)) / 1000, rail=name)

    def _engine(self, name: str, text: str) -> None:
        engine = name.removesuffix("_FREQ").lower()
        match = _ENGINE_VALUE_RE.match(text)
        assert match is not None
        if text == "off":
            self.add("engine_frequency_hertz", 0, engine=engine)
            return
        load, at_mhz, mhz = match.groups()
        if load is not None:
            self.add("engine_utilization_ratio", int(load) / 100, engine=engine)
        self.add("engine_frequency_hertz", int(at_mhz or mhz) * 1e6, engine=engine)


_KEYWORDS = {
    "RAM": _LineParser.ram,
    "SWAP": _LineParser.swap,
    "IRAM": _LineParser.iram,
    "CPU": _LineParser.cpu,
    "EMC_FREQ": _LineParser.emc,
    "GR3D_FREQ": _LineParser.gpu,
}
