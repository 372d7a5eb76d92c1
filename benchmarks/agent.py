"""``fleetwatch bench agent``: bytes on the wire per sample, CPU and memory of the gateway agent.

Workload: a simulated gateway (``fleetwatch.agent.workload``), by default 20 devices x 60 series
every 10 s for one hour (432,000 samples). Bytes per sample include the estimated HTTP/TCP
overhead of each request (``fleetwatch.agent.bandwidth.wire_bytes``, the figure the bandwidth
cap charges); body-only figures are in ``body_bytes_per_sample``.

* (a) plain line protocol and (b) gzip line protocol, in Telegraf's batches (``metric_batch_size``
  1000, one request per batch);
* (c) the agent's dense encoding, in the agent's batches: one request per ``flush_interval_s``
  (60 s by default) in steady state, and ``batch_max_samples`` (10,000) when draining a backlog.
  Every batch is decoded and compared bit for bit with what was encoded.

CPU and peak RSS come from a child process that imports only the agent: it generates the hour
tick by tick, ingests each tick (validation, lanes, the fsync'ed disk buffer) and ships every
flush interval to a local receiver in this process (buffer read, encode, HTTP). CPU is the
child's process time around ingest and ship only. Peak RSS is the child's ``VmHWM`` (Linux): its
``ru_maxrss`` is also reported, but Linux carries the parent's resident size into it across
fork+exec, so it is a bound, not the agent's own peak (the child is started first, while this
process is still small, to keep that bound tight).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks._common import emit
from fleetwatch import lineprotocol
from fleetwatch.agent import codec
from fleetwatch.agent.bandwidth import wire_bytes
from fleetwatch.agent.workload import GatewayWorkload
from fleetwatch.telemetry import Sample

TELEGRAF_BATCH = 1000
LP_HEADERS = 200  # request line + Host, Content-Type, Content-Encoding, Content-Length, auth
DENSE_HEADERS = 220


def _exact(samples: list[Sample]) -> list[tuple[object, ...]]:
    """Comparable form that tells apart every float64 bit pattern."""
    return [(s.name, dict(s.labels), s.timestamp_ms, struct.pack("<d", s.value)) for s in samples]


def encoding_figures(samples: list[Sample], agent_batch: int, backlog_batch: int) -> dict[str, Any]:
    """Bytes per sample of the three encodings; raises if the dense round trip is not exact."""
    n = len(samples)
    wire = {"line_protocol": 0, "gzip_line_protocol": 0, "agent": 0, "agent_backlog": 0}
    body = dict.fromkeys(wire, 0)
    for i in range(0, n, TELEGRAF_BATCH):
        lp = lineprotocol.encode(samples[i : i + TELEGRAF_BATCH])
        gz = gzip.compress(lp, compresslevel=6, mtime=0)
        for key, size in (("line_protocol", len(lp)), ("gzip_line_protocol", len(gz))):
            body[key] += size
            wire[key] += wire_bytes(size, LP_HEADERS)
    for key, size_of_batch in (("agent", agent_batch), ("agent_backlog", backlog_batch)):
        for i in range(0, n, size_of_batch):
            batch = samples[i : i + size_of_batch]
            dense = codec.encode(batch)
            # decode returns the batch series-major; compare in that order, bit for bit.
            if _exact(codec.decode(dense)) != _exact(codec.series_major(batch)):
                raise AssertionError("dense round trip is not exact")
            body[key] += len(dense)
            wire[key] += wire_bytes(len(dense), DENSE_HEADERS)
    return {
        **{f"bytes_per_sample_{k}": round(v / n, 3) for k, v in wire.items()},
        "body_bytes_per_sample": {k: round(v / n, 3) for k, v in body.items()},
        "agent_vs_gzip_ratio": round(wire["gzip_line_protocol"] / wire["agent"], 2),
        "agent_backlog_vs_gzip_ratio": round(wire["gzip_line_protocol"] / wire["agent_backlog"], 2),
        "lossless": True,
    }


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        n = len(codec.decode(payload))
        with _Sink.lock:
            _Sink.received += n
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def run_agent_child(args: argparse.Namespace, url: str, buffer_dir: str) -> dict[str, Any]:
    """In a fresh process: only the agent, ingest + ship the workload, report CPU and RSS."""
    from fleetwatch.agent.config import AgentSettings
    from fleetwatch.agent.runner import Agent

    conf = AgentSettings(uplink="ingest", uplink_url=url, flush_interval_s=args.flush_s)
    agent = Agent(conf, buffer_dir=Path(buffer_dir))
    workload = GatewayWorkload(args.devices, interval_ms=int(args.interval_s * 1000))
    ticks = int(args.hours * 3600 / args.interval_s)
    per_flush = max(1, int(args.flush_s / args.interval_s))
    cpu = 0.0
    samples = 0
    for i in range(ticks):
        tick = workload.tick()
        samples += len(tick)
        started = time.process_time()
        agent.ingest(tick)
        if (i + 1) % per_flush == 0 or i == ticks - 1:
            while agent.ship_once() == "accepted":
                pass
        cpu += time.process_time() - started
    stats = agent.stats()
    agent.stop()
    heavy = [m for m in ("pandas", "sklearn", "statsmodels", "numpy") if m in sys.modules]
    return {
        "samples": samples,
        "cpu_s": cpu,
        "peak_rss_mb": _vm_hwm_mb(),
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "samples_sent": stats["samples_sent"],
        "requests": stats["requests"],
        "imported_heavy": heavy,
    }


def _vm_hwm_mb() -> float:
    """This process's own peak resident size (Linux), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_agent_child(
    args: argparse.Namespace, tmp: str
) -> tuple[subprocess.Popen[str], ThreadingHTTPServer]:
    _Sink.received = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    child_args = [
        "--devices", str(args.devices), "--hours", str(args.hours),
        "--interval-s", str(args.interval_s), "--flush-s", str(args.flush_s),
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.agent", "--child", url, tmp, *child_args],
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, server


def finish_agent_child(proc: subprocess.Popen[str], server: ThreadingHTTPServer) -> dict[str, Any]:
    out, _ = proc.communicate()
    server.shutdown()
    if proc.returncode != 0:
        raise RuntimeError(f"agent child failed with status {proc.returncode}")
    child: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if _Sink.received != child["samples"]:
        raise AssertionError(f"receiver got {_Sink.received} of {child['samples']} samples")
    return child


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench agent")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--interval-s", type=float, default=10.0)
    parser.add_argument("--flush-s", type=float, default=60.0, help="agent flush interval")
    parser.add_argument("--backlog-batch", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, metavar=("URL", "BUFFER_DIR"), help=argparse.SUPPRESS)
    opts = parser.parse_args(args)
    if opts.child:
        result = run_agent_child(opts, *opts.child)
        print(json.dumps(result))
        return result

    with tempfile.TemporaryDirectory(prefix="fleetwatch-bench-agent-") as tmp:
        print("running the agent in a child process (ingest, disk buffer, ship) ...", flush=True)
        proc, server = start_agent_child(opts, tmp)
        ticks = int(opts.hours * 3600 / opts.interval_s)
        print(f"generating {opts.devices} devices x 60 series x {ticks} ticks ...", flush=True)
        workload = GatewayWorkload(opts.devices, interval_ms=int(opts.interval_s * 1000))
        samples = [s for tick in workload.ticks(ticks) for s in tick]
        agent_batch = len(workload.series) * max(1, int(opts.flush_s / opts.interval_s))
        print(f"encoding {len(samples)} samples 3 ways (agent batch {agent_batch}) ...", flush=True)
        figures = encoding_figures(samples, agent_batch, opts.backlog_batch)
        print("waiting for the agent child ...", flush=True)
        child = finish_agent_child(proc, server)
    return emit(
        {
            "benchmark": "agent",
            "devices": opts.devices,
            "series_per_device": len(workload.series) // opts.devices,
            "interval_s": opts.interval_s,
            "hours": opts.hours,
            "samples": len(samples),
            "agent_batch_samples": agent_batch,
            "telegraf_batch_samples": TELEGRAF_BATCH,
            **figures,
            "cpu_s_per_100k_samples": round(child["cpu_s"] / child["samples"] * 100_000, 3),
            "peak_rss_mb": round(child["peak_rss_mb"], 1),
            "ru_maxrss_mb": round(child["ru_maxrss_mb"], 1),
            "agent_requests": child["requests"],
            "agent_imported_heavy_modules": child["imported_heavy"],
            "targets": {"agent_vs_gzip_ratio_min": 3.0, "peak_rss_mb_max": 80},
        }
    )


if __name__ == "__main__":
    main(sys.argv[1:])
