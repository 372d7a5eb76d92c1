"""The disk buffer: resumes after a crash, truncates torn tails, evicts by priority, counts drops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from fleetwatch.agent.buffer import DiskBuffer
from fleetwatch.telemetry import Sample


def batch(name: str, n: int, start: int = 0) -> list[Sample]:
    """``n`` samples of one series with hard-to-compress values (records of realistic size)."""
    labels = {"device": "d1", "site": "s1"}
    t0 = 1_700_000_000_000
    return [
        Sample(name, labels, (start + i) * 2654435761 % 10007 / 3, t0 + (start + i) * 1000)
        for i in range(n)
    ]


def drain(buf: DiskBuffer, lane: str) -> list[Sample]:
    out: list[Sample] = []
    while (b := buf.read(lane, 1000)) is not None:  # type: ignore[arg-type]
        out.extend(b.samples)
        buf.ack(b)
    return out


def test_acknowledged_batches_go_and_the_rest_comes_back_after_reopen(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=2**20, segment_bytes=4096)
    for i in range(20):
        buf.append("bulk", batch("cpu_utilization_ratio", 50, i * 50))
    first = buf.read("bulk", 300)
    assert first is not None and len(first.samples) == 300
    buf.ack(first)
    unacked = buf.read("bulk", 100)  # read but never acknowledged: must come back
    assert unacked is not None
    buf.close()

    again = DiskBuffer(tmp_path, max_bytes=2**20, segment_bytes=4096)
    assert again.stats()["bulk"].samples == 700
    rest = drain(again, "bulk")
    assert [s.timestamp_ms for s in first.samples + rest] == [
        s.timestamp_ms for i in range(20) for s in batch("x", 50, i * 50)
    ]
    assert again.stats()["bulk"].samples == 0
    # Finished segments are deleted; at most the open one stays.
    assert len(list((tmp_path / "bulk").glob("seg-*.log"))) <= 1


def test_a_torn_tail_is_truncated_and_appending_resumes(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=2**20)
    buf.append("thermal", batch("temperature_celsius", 10))
    buf.append("thermal", batch("temperature_celsius", 10, 10))
    buf.close()
    segment = next((tmp_path / "thermal").glob("seg-*.log"))
    good_size = segment.stat().st_size
    with segment.open("ab") as fh:  # half a record, as a power cut leaves it
        fh.write(b"\x40\x00\x00\x00\xde\xad\xbe\xef\x05\x00")

    again = DiskBuffer(tmp_path, max_bytes=2**20)
    assert again.corrupt_bytes == 10
    assert segment.stat().st_size == good_size
    again.append("thermal", batch("temperature_celsius", 5, 20))
    assert [s.timestamp_ms % 100_000 // 1000 for s in drain(again, "thermal")] == list(range(25))


def test_a_record_with_a_bad_crc_is_cut_off(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=2**20)
    buf.append("health", batch("device_healthy", 3))
    buf.append("health", batch("device_healthy", 3, 3))
    buf.close()
    segment = next((tmp_path / "health").glob("seg-*.log"))
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the last record's payload
    segment.write_bytes(bytes(data))
    again = DiskBuffer(tmp_path, max_bytes=2**20)
    assert len(drain(again, "health")) == 3


APPENDER = textwrap.dedent(
    """
    import sys
    from fleetwatch.agent.buffer import DiskBuffer
    from fleetwatch.telemetry import Sample
    buf = DiskBuffer(sys.argv[1], max_bytes=2**30, segment_bytes=65536)
    i = 0
    while True:
        buf.append("bulk", [Sample("m", {"device": "d", "site": "s"}, float(i), i)])
        print(i, flush=True)  # only after append() returned, i.e. after fsync
        i += 1
    """
)


def test_every_append_that_returned_survives_kill_9(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    confirmed = -1
    for line in proc.stdout:
        confirmed = int(line)
        if confirmed >= 400:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    values = [int(s.value) for s in drain(DiskBuffer(tmp_path, max_bytes=2**30), "bulk")]
    # Everything confirmed is there, in order; at most the append in progress comes on top.
    assert values[: confirmed + 1] == list(range(confirmed + 1))
    assert values == list(range(len(values)))


def test_a_full_buffer_evicts_bulk_first_counts_it_and_never_evicts_health(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=64 * 1024, segment_bytes=4096)
    appended = {"bulk": 0, "thermal": 0, "health": 0}
    for i in range(150):
        for lane, name in (
            ("bulk", "memory_used_bytes"),
            ("thermal", "temperature_celsius"),
            ("health", "component_state"),
        ):
            n = {"bulk": 40, "thermal": 4, "health": 2}[lane]
            appended[lane] += buf.append(lane, batch(name, n, i * n))  # type: ignore[arg-type]
    drops = buf.drops()
    assert set(drops) <= {("bulk", "evicted"), ("bulk", "buffer_full")}
    kept = {lane: len(drain(buf, lane)) for lane in appended}
    dropped_bulk = drops.get(("bulk", "evicted"), 0)
    assert dropped_bulk > 0
    assert kept["health"] == 300 and kept["thermal"] == 600
    assert kept["bulk"] + dropped_bulk + drops.get(("bulk", "buffer_full"), 0) == 6000


def test_health_is_kept_even_past_the_bound(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=64 * 1024, segment_bytes=4096)
    for i in range(400):
        buf.append("health", batch("device_healthy", 40, i * 40))
    assert buf.drops() == {}
    assert buf.stats()["health"].bytes > 64 * 1024
    assert len(drain(buf, "health")) == 16_000


def test_samples_in_flight_are_never_both_evicted_and_delivered(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=64 * 1024, segment_bytes=4096)
    total = 0
    for i in range(200):
        total += buf.append("bulk", batch("memory_used_bytes", 40, i * 40))
    in_flight = buf.read("bulk", 500)
    assert in_flight is not None
    for i in range(200):
        buf.append("thermal", batch("temperature_celsius", 40, i * 40))
    buf.ack(in_flight)  # the uplink delivered them while the thermal lane pushed bulk out
    delivered = len(in_flight.samples) + len(drain(buf, "bulk"))
    dropped = sum(n for (lane, _), n in buf.drops().items() if lane == "bulk")
    assert delivered + dropped == 200 * 40
    assert len(in_flight.samples) >= 500


def test_a_rejected_batch_is_counted_quarantined_and_skipped(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=2**20)
    buf.append("bulk", batch("m", 7))
    buf.append("bulk", batch("m", 3, 7))
    bad = buf.read("bulk", 7)
    assert bad is not None
    buf.reject(bad, "rejected", b'{"error": "field type conflict"}')
    assert buf.drops() == {("bulk", "rejected"): 7}
    assert len(list((tmp_path / "quarantine").glob("*.fwd"))) == 1
    assert len(drain(buf, "bulk")) == 3
