"""The gateway agent: collectors on their intervals, the disk buffer, the uplink.

Use it from the CLI (``fleetwatch agent``) or in-process (``fleetwatch demo``, tests)::

    agent = Agent(settings.agent, buffer_dir=settings.data_dir / "agent")
    agent.start()          # one thread per collector instance, one shipping thread
    ...
    agent.stats()          # buffer depth per lane, bytes/samples sent, drops, errors
    agent.stop()

or step by step with :meth:`Agent.run_once` (collect every instance once, ship what is buffered).

Every collected sample gets ``device``/``site`` from its collector instance or the agent when it
carries none, is validated (a malformed one is counted and dropped, the rest kept), passes the
deadband (if configured), and is appended to its lane's log. Shipping sends the lanes in strict
priority order (health, thermal, bulk) in one request when they fit, waits for the bandwidth cap,
and removes batches from the buffer only once the receiver answered 2xx.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from fleetwatch.agent import codec
from fleetwatch.agent.bandwidth import TokenBucket, wire_bytes
from fleetwatch.agent.buffer import Batch, DiskBuffer
from fleetwatch.agent.config import AgentSettings, CollectorInstance
from fleetwatch.agent.deadband import Deadband
from fleetwatch.agent.lanes import LANES, lane_of, lane_quotas, split_by_lane
from fleetwatch.agent.observe import StatusServer
from fleetwatch.agent.spool import SpoolCollector
from fleetwatch.agent.uplink import Request, SendResult, Uplink, build_uplink
from fleetwatch.plugins import Collector, PluginError, PluginRegistry
from fleetwatch.telemetry import Sample, partition

log = logging.getLogger(__name__)

GROUP = "fleetwatch.collectors"
BUILTIN_COLLECTORS: dict[str, type[Collector]] = {"spool": SpoolCollector}
IDLE_WAIT_S = 0.2
# With a bandwidth cap, one request is kept to about this many seconds of the allowed rate, so
# that the cap holds over short windows too (a single huge request would be one big burst).
REQUEST_SECONDS_AT_CAP = 2.0


class AgentConfigError(Exception):
    """The [agent] section names an unknown plugin or gives a plugin a bad config."""


def load_registry(settings: AgentSettings) -> PluginRegistry:
    """Collector plugins from entry points: only those the config uses are imported, so a broken
    plugin fails the start-up of the agents that run it, naming it, and no other."""
    wanted = {c.plugin for c in settings.collectors}
    eps = [ep for ep in entry_points(group=GROUP) if ep.name in wanted]
    registry = PluginRegistry.from_entry_points([GROUP], eps=eps)
    add_builtins(registry)
    return registry


def add_builtins(registry: PluginRegistry) -> None:
    for name, plugin in BUILTIN_COLLECTORS.items():
        if name not in registry.names(GROUP):
            registry.register(GROUP, name, plugin)


@dataclass(slots=True)
class _Running:
    instance: CollectorInstance
    plugin: Collector


def stamp(samples: Sequence[Sample], device: str | None, site: str | None) -> list[Sample]:
    """Give samples without ``device``/``site`` the defaults; labels already there win."""
    out = []
    for s in samples:
        labels = s.labels
        need_device = device is not None and not labels.get("device")
        need_site = site is not None and not labels.get("site")
        if need_device or need_site:
            fixed = dict(labels)
            if need_device and device is not None:
                fixed["device"] = device
            if need_site and site is not None:
                fixed["site"] = site
            s = Sample(s.name, fixed, s.value, s.timestamp_ms)
        out.append(s)
    return out


def well_formed(samples: Sequence[object]) -> tuple[list[Sample], list[object]]:
    """Split off objects that are not samples with a label mapping (validation needs both)."""
    good: list[Sample] = []
    bad: list[object] = []
    for s in samples:
        if isinstance(s, Sample) and isinstance(s.labels, Mapping):
            good.append(s)
        else:
            bad.append(s)
    return good, bad


class Agent:
    """One gateway agent. ``registry`` and ``uplink`` may be injected (tests, demo)."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        registry: PluginRegistry | None = None,
        uplink: Uplink | None = None,
        buffer_dir: Path | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.settings = settings
        if registry is None:
            registry = load_registry(settings)
        else:
            add_builtins(registry)
        self.collectors = [self._build(i, ci, registry) for i, ci in enumerate(settings.collectors)]
        root = buffer_dir or settings.buffer_dir or Path(".fleetwatch") / "agent"
        self.buffer = DiskBuffer(
            root,
            max_bytes=settings.buffer_max_bytes,
            segment_bytes=settings.segment_bytes,
            fsync=settings.fsync,
            fsync_interval_s=settings.fsync_interval_s,
            quarantine_max_files=settings.quarantine_max_files,
        )
        self.uplink: Uplink = uplink or build_uplink(settings)
        rate = settings.bandwidth_bytes_per_s
        burst = settings.bandwidth_burst_bytes or max(1024.0, rate * 2 if rate else 0)
        self.bucket = TokenBucket(rate, burst) if rate else None
        self.deadband = Deadband(settings.deadband)
        self.metrics_port = (
            settings.metrics_port if settings.metrics_port is not None else (metrics_port)
        )
        self.status: StatusServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._invalid: Counter[str] = Counter()
        self._send_errors: Counter[str] = Counter()
        self._collector_errors: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._retry_after: float | None = None
        self._bytes_per_sample = 4.0

    def _build(self, index: int, ci: CollectorInstance, registry: PluginRegistry) -> _Running:
        where = f"agent.collectors[{index}] ({ci.instance_name})"
        try:
            cls = cast(type[Collector], registry.get(GROUP, ci.plugin))
        except PluginError as exc:
            raise AgentConfigError(f"{where}: {exc}") from None
        try:
            config = cls.config_model.model_validate(self._plugin_config(ci, cls))
        except ValidationError as exc:
            fields = "; ".join(
                f"config.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise AgentConfigError(f"{where}: {fields}") from None
        try:
            return _Running(ci, cls(config))
        except Exception as exc:
            raise AgentConfigError(f"{where}: {type(exc).__name__}: {exc}") from exc

    def _plugin_config(self, ci: CollectorInstance, cls: type[Collector]) -> dict[str, Any]:
        """The plugin's config, given the instance's (or agent's) device and site when the plugin
        has such fields and the config leaves them out: a plugin that labels its own samples
        would otherwise use its own default (e.g. the host name) instead of the agent's."""
        config = dict(ci.config)
        fields = getattr(cls.config_model, "model_fields", {})
        for key, value in (
            ("device", ci.device or self.settings.device),
            ("site", ci.site or self.settings.site),
        ):
            if key in fields and key not in config and value is not None:
                config[key] = value
        return config

    # -- collection ----------------------------------------------------------------------------
    def collect(self, run: _Running) -> int:
        """Run one collection of one instance; return the samples buffered. Never raises."""
        name = run.instance.instance_name
        try:
            result = run.plugin.collect()
        except Exception:
            log.exception("collector %s raised; its samples of this round are lost", name)
            self._bump(self._collector_errors, name)
            return 0
        for err in result.errors[:5]:
            log.warning("collector %s: %s: %s", name, err.source, err.message)
        if result.errors:
            self._bump(self._collector_errors, name, len(result.errors))
        stored = self.ingest(result.samples, instance=run.instance)
        if stored is not None:
            acknowledge = getattr(run.plugin, "acknowledge", None)
            if callable(acknowledge):
                acknowledge()  # push sources may now forget what is durable here
        self._bump(self._counts, "collections")
        return stored or 0

    def ingest(
        self, samples: Sequence[Sample], *, instance: CollectorInstance | None = None
    ) -> int | None:
        """Stamp, validate, deadband and buffer samples; the number kept, None if the disk
        failed (the source should then keep them)."""
        device = (instance.device if instance else None) or self.settings.device
        site = (instance.site if instance else None) or self.settings.site
        usable, broken = well_formed(samples)
        if broken:
            log.warning("dropping %d objects that are not samples, e.g. %r", len(broken), broken[0])
            self._bump(self._invalid, "bulk", len(broken))
        parts = partition(stamp(usable, device, site))
        for err in parts.errors[:5]:
            log.warning("dropping malformed sample: %s", err.message)
        for err in parts.errors:
            name = usable[err.index].name
            self._bump(self._invalid, lane_of(name) if isinstance(name, str) else "bulk")
        kept, suppressed = self.deadband.filter(parts.valid)
        if suppressed:
            self._bump(self._counts, "suppressed", suppressed)
        stored = 0
        for lane, lane_samples in split_by_lane(kept, instance.lane if instance else None).items():
            try:
                stored += self.buffer.append(lane, lane_samples)
            except OSError as exc:
                log.error("cannot write the %s buffer: %s", lane, exc)
                self._bump(self._counts, "buffer_write_errors")
                return None
        return stored

    def _collect_loop(self, run: _Running) -> None:
        interval = run.instance.interval_s
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                self.collect(run)
            except Exception:  # e.g. a disk error: keep the thread, try again next round
                log.exception("collection of %s failed", run.instance.instance_name)
                self._bump(self._collector_errors, run.instance.instance_name)
            due += interval
            now = time.monotonic()
            if due < now:  # a slow collection: skip the missed rounds instead of bursting
                due = now + interval - (now - due) % interval
            self._stop.wait(due - now)

    # -- shipping ------------------------------------------------------------------------------
    def _sample_limit(self) -> int:
        limit = self.settings.batch_max_samples
        if self.bucket is not None:
            request_bytes = max(1024.0, self.bucket.rate * REQUEST_SECONDS_AT_CAP)
            limit = min(limit, max(1, int(request_bytes / self._bytes_per_sample)))
        return limit

    def _due(self) -> bool:
        now_ms = time.time() * 1000
        limit = self._sample_limit()
        for lane_stats in self.buffer.stats().values():
            if lane_stats.samples >= limit:
                return True
            oldest = lane_stats.oldest_appended_ms
            if oldest is not None and now_ms - oldest >= self.settings.flush_interval_s * 1000:
                return True
        return False

    def ship_once(self) -> str:
        """Send one request of the oldest unsent samples, highest lane first (or by lane shares).

        Returns ``idle`` (nothing buffered), ``accepted``, ``rejected`` or ``retry``."""
        backlog = {lane: st.samples for lane, st in self.buffer.stats().items()}
        shares = self.settings.lane_shares if self.settings.drain_order == "shared" else None
        quotas = lane_quotas(self._sample_limit(), backlog, shares)
        batches: list[Batch] = []
        for lane in LANES:
            batch = self.buffer.read(lane, quotas[lane]) if quotas[lane] > 0 else None
            if batch is not None:
                batches.append(batch)
        if not batches:
            return "idle"
        return self._ship(batches)

    def _ship(self, batches: list[Batch]) -> str:
        result = self._deliver([s for b in batches for s in b.samples])
        if result.outcome == "accepted":
            for b in batches:
                self.buffer.ack(b)
            return "accepted"
        if result.outcome == "rejected" and len(batches) > 1:
            for b in batches[1:]:
                self.buffer.release(b)  # one lane's bad sample must not condemn the others
            outcomes = [self._ship([b]) for b in batches[:1]]
            return outcomes[0]
        for b in batches:
            if result.outcome == "rejected":
                log.error(
                    "uplink rejected %d %s samples: %s", len(b.samples), b.lane, result.detail
                )
                self.buffer.reject(b, "rejected", result.response)
            else:
                self.buffer.release(b)
        return "rejected" if result.outcome == "rejected" else "retry"

    def _deliver(self, samples: list[Sample]) -> SendResult:
        """Encode, pace and send; split in halves when the request is too large."""
        request = self.uplink.encode(samples)
        if samples:
            self._bytes_per_sample = max(0.5, len(request.body) / len(samples))
        too_big = self.bucket is not None and len(request.body) > 2 * max(
            1024.0, self.bucket.rate * REQUEST_SECONDS_AT_CAP
        )
        if not too_big or len(samples) == 1:
            result = self._send(request, samples)
            if result.outcome == "too_large" and len(samples) == 1:
                return SendResult("rejected", result.status, result.detail, result.response)
            if result.outcome != "too_large":
                return result
        half = len(samples) // 2
        first = self._deliver(samples[:half])
        if first.outcome != "accepted":
            return first
        return self._deliver(samples[half:])

    def _send(self, request: Request, samples: list[Sample]) -> SendResult:
        on_wire = wire_bytes(len(request.body), request.header_bytes())
        if self.bucket is not None:
            delay = self.bucket.delay()
            if delay > 0 and self._stop.wait(delay):
                return SendResult("retry", None, "agent stopping")
            self.bucket.spend(on_wire)
        result = self.uplink.send(request)
        self._bump(self._counts, "bytes_sent", on_wire)
        self._retry_after = result.retry_after_s
        if result.outcome == "accepted":
            self._bump(self._counts, "body_bytes_sent", len(request.body))
            self._bump(self._counts, "samples_sent", len(samples) - result.refused)
            self._bump(self._counts, "requests")
            if result.refused:
                self._count_refused(samples, result)
        else:
            kind = f"http_{result.status}" if result.status else "connection"
            self._bump(self._send_errors, kind)
            log.warning("uplink send failed (%s): %s", result.outcome, result.detail)
        return result

    def _count_refused(self, samples: list[Sample], result: SendResult) -> None:
        """A 2xx that stored only part of the batch: count the rest as dropped, by lane when the
        receiver listed their positions (in the decoded, series-major order)."""
        ordered = codec.series_major(samples)
        listed = [i for i in result.refused_indices if 0 <= i < len(ordered)][: result.refused]
        for i in listed:
            self._bump(self._refused, lane_of(ordered[i].name))
        if result.refused > len(listed):
            self._bump(self._refused, "unknown", result.refused - len(listed))
        log.warning("receiver refused %d samples of a batch: %s", result.refused, result.detail)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter between half and the whole of the step."""
        step = min(self.settings.retry_max_s, self.settings.retry_initial_s * 2.0 ** (attempt - 1))
        return float(step * random.uniform(0.5, 1.0))

    def _ship_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if attempt == 0 and not self._due():
                self._stop.wait(IDLE_WAIT_S)
                continue
            try:
                outcome = self.ship_once()
            except Exception:
                log.exception("shipping failed unexpectedly; retrying")
                outcome = "retry"
            if outcome == "retry":
                attempt += 1
                self._stop.wait(max(self.backoff(attempt), self._retry_after or 0.0))
            elif outcome == "idle":
                attempt = 0
                self._stop.wait(IDLE_WAIT_S)
            else:
                attempt = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def run_once(self, *, ship: bool = True) -> dict[str, Any]:
        """Collect every instance once, then ship until the buffer is empty or a send fails."""
        for run in self.collectors:
            self.collect(run)
        while ship and self.ship_once() == "accepted":
            pass
        return self.stats()

    def start(self) -> None:
        """Start the collector threads, the shipping thread and the status server."""
        if self.metrics_port is not None:
            self.status = StatusServer(
                self.stats, self.healthy, self.settings.metrics_host, self.metrics_port
            )
            self.status.start()
        for run in self.collectors:
            name = f"collect-{run.instance.instance_name}"
            self._threads.append(
                threading.Thread(target=self._collect_loop, args=(run,), name=name)
            )
        self._threads.append(threading.Thread(target=self._ship_loop, name="ship"))
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def healthy(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop threads, close collectors, the uplink and the buffer (its data stays on disk)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for run in self.collectors:
            try:
                run.plugin.close()
            except Exception:
                log.exception("closing collector %s failed", run.instance.instance_name)
        self.uplink.close()
        self.buffer.close()
        if self.status is not None:
            self.status.stop()

    def _bump(self, counter: Counter[str], key: str, n: int = 1) -> None:
        with self._lock:
            counter[key] += n

    def stats(self) -> dict[str, Any]:
        """A JSON-able snapshot: buffer per lane, traffic, drops by lane/reason, errors."""
        now_ms = time.time() * 1000
        buffer = {
            lane: {
                "bytes": st.bytes,
                "samples": st.samples,
                "oldest_unsent_age_s": 0.0
                if st.oldest_appended_ms is None
                else max(0.0, (now_ms - st.oldest_appended_ms) / 1000),
            }
            for lane, st in self.buffer.stats().items()
        }
        with self._lock:
            dropped = {f"{lane}/{reason}": n for (lane, reason), n in self.buffer.drops().items()}
            dropped.update({f"{lane}/invalid": n for lane, n in self._invalid.items()})
            dropped.update({f"{lane}/refused": n for lane, n in self._refused.items()})
            return {
                "buffer": buffer,
                "bytes_sent": self._counts["bytes_sent"],
                "body_bytes_sent": self._counts["body_bytes_sent"],
                "samples_sent": self._counts["samples_sent"],
                "requests": self._counts["requests"],
                "suppressed": self._counts["suppressed"],
                "collections": self._counts["collections"],
                "buffer_write_errors": self._counts["buffer_write_errors"],
                "dropped": dropped,
                "send_errors": dict(self._send_errors),
                "collector_errors": dict(self._collector_errors),
            }
