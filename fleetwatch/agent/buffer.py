"""The durable disk buffer: one append-only log per lane, bounded in bytes, resumed after a crash.

Layout under the buffer directory::

    <lane>/seg-<seq>.log      append-only segment files of framed records
    <lane>/committed.json     {"seq": S, "offset": O}: everything before it was acknowledged
    quarantine/               batches a receiver rejected (4xx), kept for inspection

A record is ``u32 payload_length | u32 crc32 | u32 n_samples | i64 appended_ms | payload`` (little
endian); the CRC covers the sample count, the append time and the payload, which is one
:mod:`fleetwatch.agent.codec` batch. On open, every segment is scanned: the first record whose
frame or CRC is wrong marks a torn tail (a write cut by a crash or power loss), and the segment is
truncated there. Records after the committed offset are sent again, so a crash between the uplink's
acknowledgement and the commit re-sends one batch: harmless, writes are idempotent.

Durability (``fsync``): with ``batch`` every append is fsync'ed before :meth:`DiskBuffer.append`
returns, so neither ``kill -9`` nor power loss loses an appended sample; with ``interval`` a power
loss may lose up to ``fsync_interval_s`` of appends (``kill -9`` loses nothing: the data is in the
page cache); ``never`` leaves it to the OS. The committed offset is always written to a temporary
file, fsync'ed and renamed, so it is either the old or the new offset, never torn.

When an append would pass ``max_bytes``, whole segments are evicted, oldest first, lowest lane
first: bulk, then thermal. Health is never evicted: a health append is kept even past the bound.
Segments that are in flight (read by the uplink, not yet acknowledged) are never evicted, so a
sample is either delivered or counted as dropped, never both. Every dropped sample is counted by
lane and reason.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fleetwatch.agent import codec
from fleetwatch.agent.lanes import LANES, Lane
from fleetwatch.telemetry import Sample

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIIq")
MAX_RECORD_BYTES = 64 * 2**20
EVICTION_ORDER: dict[Lane, tuple[Lane, ...]] = {
    "bulk": ("bulk",),
    "thermal": ("bulk", "thermal"),
    "health": ("bulk", "thermal"),
}


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in a lane's log: segment sequence number and byte offset."""

    seq: int
    offset: int


@dataclass(slots=True)
class Batch:
    """Records read from one lane, in flight until acknowledged or released."""

    lane: Lane
    samples: list[Sample]
    start: Position
    end: Position
    oldest_appended_ms: int


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int = 0
    samples: int = 0


@dataclass(slots=True)
class LaneStats:
    bytes: int
    samples: int
    oldest_appended_ms: int | None


@dataclass(slots=True)
class _LaneLog:
    lane: Lane
    root: Path
    segments: list[_Segment] = field(default_factory=list)
    committed: Position = Position(0, 0)
    committed_samples: int = 0  # samples of the head segment before the committed offset
    inflight_end: Position | None = None
    fd: int | None = None  # append handle of the last segment
    next_seq: int = 1

    def head_unacked(self, seg: _Segment) -> tuple[int, int]:
        """(bytes, samples) of a segment not yet acknowledged."""
        if seg.seq == self.committed.seq:
            return seg.size - self.committed.offset, seg.samples - self.committed_samples
        return seg.size, seg.samples


def _frame(samples: list[Sample], appended_ms: int) -> bytes:
    payload = codec.encode(samples, compression="zlib", level=6)
    meta = struct.pack("<Iq", len(samples), appended_ms)
    crc = zlib.crc32(payload, zlib.crc32(meta))
    return _HEADER.pack(len(payload), crc, len(samples), appended_ms) + payload


def _read_record(data: bytes, pos: int) -> tuple[int, int, int, bytes] | None:
    """(next_pos, n_samples, appended_ms, payload) of the record at ``pos``, None if torn."""
    if len(data) - pos < _HEADER.size:
        return None
    length, crc, n_samples, appended_ms = _HEADER.unpack_from(data, pos)
    end = pos + _HEADER.size + length
    if length > MAX_RECORD_BYTES or end > len(data):
        return None
    payload = data[pos + _HEADER.size : end]
    meta = struct.pack("<Iq", n_samples, appended_ms)
    if zlib.crc32(payload, zlib.crc32(meta)) != crc:
        return None
    return end, n_samples, appended_ms, payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskBuffer:
    """Per-lane durable logs with a byte bound and priority eviction. Thread-safe."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 2**20,
        fsync: str = "batch",
        fsync_interval_s: float = 1.0,
        quarantine_max_files: int = 100,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self.quarantine_max_files = quarantine_max_files
        self.dropped: Counter[tuple[Lane, str]] = Counter()
        self.corrupt_bytes = 0
        self._lock = threading.RLock()
        self._last_fsync = time.monotonic()
        self._logs: dict[Lane, _LaneLog] = {}
        for lane in LANES:
            self._logs[lane] = self._recover(lane)

    # -- recovery ------------------------------------------------------------------------------
    def _recover(self, lane: Lane) -> _LaneLog:
        lane_dir = self.root / lane
        lane_dir.mkdir(parents=True, exist_ok=True)
        lg = _LaneLog(lane, lane_dir)
        commit_path = lane_dir / "committed.json"
        if commit_path.exists():
            try:
                raw = json.loads(commit_path.read_text())
                lg.committed = Position(int(raw["seq"]), int(raw["offset"]))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("%s: unreadable commit file (%s); re-sending the whole lane", lane, exc)
        for path in sorted(lane_dir.glob("seg-*.log")):
            seq = int(path.stem.split("-")[1])
            if seq < lg.committed.seq:
                path.unlink()  # fully acknowledged before the crash, deletion did not happen
                continue
            lg.segments.append(self._scan(lg, _Segment(seq, path)))
            lg.next_seq = seq + 1
        if lg.segments and lg.segments[-1].size < self.segment_bytes:
            lg.fd = os.open(lg.segments[-1].path, os.O_WRONLY | os.O_APPEND)
        return lg

    def _scan(self, lg: _LaneLog, seg: _Segment) -> _Segment:
        data = seg.path.read_bytes()
        pos = 0
        while pos < len(data):
            record = _read_record(data, pos)
            if record is None:
                break
            if seg.seq == lg.committed.seq and pos < lg.committed.offset:
                lg.committed_samples += record[1]
            pos = record[0]
            seg.samples += record[1]
        if pos < len(data):
            self.corrupt_bytes += len(data) - pos
            log.warning(
                "%s: torn or corrupt tail of %d bytes at offset %d; truncated",
                seg.path,
                len(data) - pos,
                pos,
            )
            with seg.path.open("r+b") as fh:
                fh.truncate(pos)
                os.fsync(fh.fileno())
        seg.size = pos
        if seg.seq == lg.committed.seq and lg.committed.offset > pos:
            lg.committed = Position(seg.seq, pos)
        return seg

    # -- appending -----------------------------------------------------------------------------
    def append(self, lane: Lane, samples: list[Sample], *, appended_ms: int | None = None) -> int:
        """Store a lane's samples durably; return how many were kept (0 when dropped as full)."""
        if not samples:
            return 0
        now_ms = appended_ms if appended_ms is not None else int(time.time() * 1000)
        frame = _frame(samples, now_ms)
        with self._lock:
            if self._total_bytes() + len(frame) > self.max_bytes:
                self._make_room(lane, len(frame))
                if self._total_bytes() + len(frame) > self.max_bytes and lane != "health":
                    self.dropped[(lane, "buffer_full")] += len(samples)
                    return 0
            lg = self._logs[lane]
            if lg.fd is None:
                self._open_segment(lg)
            assert lg.fd is not None
            seg = lg.segments[-1]
            self._write_frame(lg.fd, seg, frame)
            seg.size += len(frame)
            seg.samples += len(samples)
            self._maybe_fsync(lg.fd)
            if seg.size >= self.segment_bytes:
                self._close_active(lg)
            return len(samples)

    @staticmethod
    def _write_frame(fd: int, seg: _Segment, frame: bytes) -> None:
        """Write a whole record or nothing: a half record left by a failed write (disk full)
        would hide every record appended after it from recovery."""
        try:
            view = memoryview(frame)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            os.ftruncate(fd, seg.size)
            raise

    def _open_segment(self, lg: _LaneLog) -> None:
        seq = max(lg.next_seq, lg.committed.seq + 1)
        lg.next_seq = seq + 1
        path = lg.root / f"seg-{seq:012d}.log"
        lg.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        lg.segments.append(_Segment(seq, path))
        if self.fsync != "never":
            _fsync_dir(lg.root)

    def _close_active(self, lg: _LaneLog) -> None:
        if lg.fd is not None:
            if self.fsync != "never":
                os.fsync(lg.fd)
            os.close(lg.fd)
            lg.fd = None

    def _maybe_fsync(self, fd: int) -> None:
        if self.fsync == "batch":
            os.fsync(fd)
        elif self.fsync == "interval":
            now = time.monotonic()
            if now - self._last_fsync >= self.fsync_interval_s:
                self.sync()
                self._last_fsync = now

    def sync(self) -> None:
        """Flush every lane's open segment to disk."""
        with self._lock:
            for lg in self._logs.values():
                if lg.fd is not None:
                    os.fsync(lg.fd)

    def _make_room(self, lane: Lane, need: int) -> None:
        for victim in EVICTION_ORDER[lane]:
            lg = self._logs[victim]
            for seg in list(lg.segments):
                if self._total_bytes() + need <= self.max_bytes:
                    return
                if lg.inflight_end is not None and seg.seq <= lg.inflight_end.seq:
                    continue  # being sent: delivered or released later, never both
                self._evict(lg, seg)

    def _evict(self, lg: _LaneLog, seg: _Segment) -> None:
        _, samples = lg.head_unacked(seg)
        self.dropped[(lg.lane, "evicted")] += samples
        log.warning("buffer full: evicted %d %s samples (%s)", samples, lg.lane, seg.path.name)
        if seg is lg.segments[-1]:
            self._close_active(lg)
        lg.segments.remove(seg)
        seg.path.unlink(missing_ok=True)
        if seg.seq == lg.committed.seq:
            lg.committed_samples = 0

    # -- reading and acknowledging -------------------------------------------------------------
    def read(self, lane: Lane, max_samples: int) -> Batch | None:
        """The oldest unacknowledged records of a lane, up to ``max_samples`` (at least one
        record), marked in flight; None when there is nothing unsent."""
        with self._lock:
            lg = self._logs[lane]
            pos = lg.committed  # one batch in flight per lane: the uplink acks before reading on
            samples: list[Sample] = []
            start: Position | None = None
            oldest: int | None = None
            for seg in lg.segments:
                if seg.seq < pos.seq:
                    continue
                offset = pos.offset if seg.seq == pos.seq else 0
                if offset >= seg.size:
                    continue
                data = self._read_segment(seg, offset)
                cursor = 0
                while cursor < len(data) and len(samples) < max_samples:
                    record = _read_record(data, cursor)
                    if record is None:  # cannot happen after recovery unless the disk rots
                        log.error("%s: corrupt record at %d; skipping the rest", seg.path, cursor)
                        self.corrupt_bytes += len(data) - cursor
                        cursor = len(data)
                        break
                    if start is None:
                        start = Position(seg.seq, offset + cursor)
                        oldest = record[2]
                    samples.extend(self._decode(lane, record[3], record[1]))
                    cursor = record[0]
                pos = Position(seg.seq, offset + cursor)
                if len(samples) >= max_samples:
                    break
            if start is None or oldest is None:
                return None
            lg.inflight_end = pos
            return Batch(lane, samples, start, pos, oldest)

    def _read_segment(self, seg: _Segment, offset: int) -> bytes:
        with seg.path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(seg.size - offset)

    def _decode(self, lane: Lane, payload: bytes, n_samples: int) -> list[Sample]:
        try:
            return codec.decode(payload)
        except ValueError as exc:
            log.error("%s: undecodable record of %d samples: %s", lane, n_samples, exc)
            self.dropped[(lane, "corrupt")] += n_samples
            return []

    def ack(self, batch: Batch) -> None:
        """The receiver accepted the batch: commit past it and delete finished segments."""
        with self._lock:
            lg = self._logs[batch.lane]
            self._commit(lg, batch.end)
            lg.inflight_end = None

    def release(self, batch: Batch) -> None:
        """The batch was not delivered; it will be read again."""
        with self._lock:
            self._logs[batch.lane].inflight_end = None

    def reject(self, batch: Batch, reason: str, body: bytes | None = None) -> None:
        """The receiver refused the batch as bad: count it, keep a copy, move past it."""
        with self._lock:
            self.dropped[(batch.lane, reason)] += len(batch.samples)
            self._quarantine(batch, body)
            self.ack(batch)

    def _commit(self, lg: _LaneLog, end: Position) -> None:
        for seg in list(lg.segments):
            finished = seg.seq < end.seq or (seg.seq == end.seq and end.offset >= seg.size)
            if not finished:
                break
            is_active = seg is lg.segments[-1] and lg.fd is not None
            if is_active:
                break  # keep appending to it; the offset says what is done
            lg.segments.remove(seg)
            seg.path.unlink(missing_ok=True)
        head = lg.segments[0] if lg.segments else None
        if head is None or head.seq > end.seq:
            lg.committed = Position(head.seq if head else end.seq + 1, 0)
            lg.committed_samples = 0
        else:
            lg.committed_samples = self._samples_before(head, end.offset)
            lg.committed = end
        self._write_commit(lg)

    def _samples_before(self, seg: _Segment, offset: int) -> int:
        count = 0
        with seg.path.open("rb") as fh:
            pos = 0
            while pos < offset:
                fh.seek(pos)
                header = fh.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                length, _, n_samples, _ = _HEADER.unpack(header)
                count += n_samples
                pos += _HEADER.size + length
        return count

    def _write_commit(self, lg: _LaneLog) -> None:
        path = lg.root / "committed.json"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump({"seq": lg.committed.seq, "offset": lg.committed.offset}, fh)
            fh.flush()
            if self.fsync != "never":
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if self.fsync != "never":
            _fsync_dir(lg.root)

    def _quarantine(self, batch: Batch, body: bytes | None) -> None:
        if self.quarantine_max_files <= 0:
            return
        qdir = self.root / "quarantine"
        qdir.mkdir(exist_ok=True)
        name = f"{int(time.time() * 1000)}-{batch.lane}-{batch.start.seq}-{batch.start.offset}"
        (qdir / f"{name}.fwd").write_bytes(codec.encode(batch.samples))
        if body is not None:
            (qdir / f"{name}.response.txt").write_bytes(body[:65536])
        kept = sorted(qdir.glob("*.fwd"))
        for old in kept[: max(0, len(kept) - self.quarantine_max_files)]:
            old.unlink(missing_ok=True)
            old.with_suffix(".response.txt").unlink(missing_ok=True)

    # -- accounting ----------------------------------------------------------------------------
    def _total_bytes(self) -> int:
        return sum(self._lane_totals(lg)[0] for lg in self._logs.values())

    def _lane_totals(self, lg: _LaneLog) -> tuple[int, int]:
        total_bytes = total_samples = 0
        for seg in lg.segments:
            b, s = lg.head_unacked(seg)
            total_bytes += b
            total_samples += s
        return total_bytes, total_samples

    def stats(self) -> dict[Lane, LaneStats]:
        """Unacknowledged bytes, samples and the append time of the oldest, per lane."""
        with self._lock:
            out = {}
            for lane, lg in self._logs.items():
                b, s = self._lane_totals(lg)
                out[lane] = LaneStats(b, s, self._oldest(lg) if s else None)
            return out

    def _oldest(self, lg: _LaneLog) -> int | None:
        for seg in lg.segments:
            offset = lg.committed.offset if seg.seq == lg.committed.seq else 0
            if offset < seg.size:
                with seg.path.open("rb") as fh:
                    fh.seek(offset)
                    header = fh.read(_HEADER.size)
                if len(header) == _HEADER.size:
                    appended_ms: int = _HEADER.unpack(header)[3]
                    return appended_ms
        return None

    def drops(self) -> dict[tuple[Lane, str], int]:
        """Dropped samples by (lane, reason) since this buffer was opened."""
        with self._lock:
            return dict(self.dropped)

    def close(self) -> None:
        with self._lock:
            for lg in self._logs.values():
                self._close_active(lg)
