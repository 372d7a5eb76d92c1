"""Ingest endpoint for gateway agents: line protocol or the agent's dense encoding, gzip or not.

Every sample is validated; the good ones are stored (idempotently: a re-sent batch overwrites the
same points) and each bad one is reported by line (line protocol) or index (dense). A token bound
to a site stamps its site on samples that carry none and rejects samples of any other site.
Limits: the body (413, also after decompression), and a per-token sample rate (429 +
Retry-After).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetwatch.api.deps import (
    Principal,
    get_db,
    get_settings,
    get_store,
    reject_unknown_query_params,
    require_scope,
)
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.api.lineprotocol_parse import Precision, parse
from fleetwatch.api.probes import INGESTED
from fleetwatch.api.ratelimit import TokenBucketLimiter
from fleetwatch.fleet import service as fleet
from fleetwatch.fleet.models import Device
from fleetwatch.settings import Settings
from fleetwatch.store import MetricsStore, StoreError, StoreUnavailable
from fleetwatch.telemetry import Sample, now_ms, partition

router = APIRouter(tags=["ingest"], dependencies=[Depends(reject_unknown_query_params)])

LINE_PROTOCOL = "text/plain"
DENSE = "application/x-fleetwatch-dense"

_EXAMPLE_LP = (
    "jetson_temperature_celsius,device=jetson-0001,site=plant-a,sensor=tj value=61.5 "
    "1764806400000\n"
    "jetson_gpu_load_ratio,device=jetson-0001,site=plant-a value=0.42 1764806400000\n"
)

_REQUEST_BODY = {
    "required": True,
    "description": "A batch of samples. `Content-Encoding: gzip` is accepted for both types.",
    "content": {
        LINE_PROTOCOL: {
            "schema": {"type": "string"},
            "example": _EXAMPLE_LP,
        },
        DENSE: {
            "schema": {"type": "string", "format": "binary"},
        },
    },
}


class IngestError(BaseModel):
    """One rejected line or sample."""

    line: int | None = Field(None, description="1-based line of a line protocol body", examples=[3])
    index: int | None = Field(
        None, description="0-based position of the sample in the decoded batch", examples=[7]
    )
    message: str = Field(..., examples=["missing required label 'site'"])


class IngestResult(BaseModel):
    accepted: int = Field(..., ge=0, description="samples stored", examples=[4998])
    rejected: int = Field(..., ge=0, description="lines or samples refused", examples=[2])
    site_stamped: int = Field(
        0, ge=0, description="samples without a site that took the token's site"
    )
    errors: list[IngestError] = Field(default_factory=list, description="the first errors")
    errors_total: int = Field(0, ge=0, description="all errors, listed or not")
    errors_truncated: bool = Field(False, description="true when `errors` is not the full list")


def _decompress(body: bytes, limit: int) -> bytes:
    """Gunzip ``body`` without ever holding more than ``limit`` bytes (zip bombs stop at 413)."""
    out = bytearray()
    data = body
    while data:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decoder.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise ApiError(400, f"body is not valid gzip: {exc}") from None
        if len(out) > limit or decoder.unconsumed_tail:
            raise ApiError(413, f"decompressed body exceeds the limit of {limit} bytes")
        if not decoder.eof:
            raise ApiError(400, "gzip body is truncated")
        data = decoder.unused_data  # a further gzip member, if any
    return bytes(out)


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"body exceeds the limit of {limit} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _decompress(bytes(body), limit)
    if encoding not in ("identity", ""):
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported; use gzip")
    return bytes(body)


def _decode_dense(body: bytes) -> list[Sample]:
    try:
        from fleetwatch.agent.codec import decode
    except ImportError:
        raise ApiError(415, f"{DENSE} is not supported by this server build") from None
    try:
        return decode(body)
    except ValueError as exc:
        raise ApiError(400, f"dense batch cannot be decoded: {exc}") from None


def _bind_site(
    samples: Sequence[Sample], site: str | None
) -> tuple[list[Sample], list[int], list[tuple[int, str]], int]:
    """Apply a site-bound token: stamp a missing site, refuse another site (by batch index)."""
    if site is None:
        return list(samples), list(range(len(samples))), [], 0
    kept: list[Sample] = []
    positions: list[int] = []
    refused: list[tuple[int, str]] = []
    stamped = 0
    for i, sample in enumerate(samples):
        own = sample.labels.get("site")
        if own is None or own == "":
            sample = Sample(
                sample.name, {**sample.labels, "site": site}, sample.value, sample.timestamp_ms
            )
            stamped += 1
        elif own != site:
            refused.append((i, f"site {own!r} is not this token's site {site!r}"))
            continue
        kept.append(sample)
        positions.append(i)
    return kept, positions, refused, stamped


def _ingest(
    *,
    body: bytes,
    media_type: str,
    precision: Precision,
    principal: Principal,
    settings: Settings,
    store: MetricsStore,
    limiter: TokenBucketLimiter,
    db: Session,
) -> IngestResult:
    errors: list[IngestError] = []
    if media_type == DENSE:
        samples = _decode_dense(body)
        lines: list[int] | None = None
    else:
        parsed = parse(
            body.decode("utf-8", "surrogateescape"), precision=precision, now_ms=now_ms()
        )
        samples, lines = parsed.samples, parsed.lines
        errors += [IngestError(line=e.line, index=None, message=e.message) for e in parsed.errors]

    def where(i: int) -> IngestError:
        return IngestError(line=lines[i] if lines is not None else None, index=i, message="")

    wait = limiter.acquire(principal.token_id, max(1, len(samples)))
    if wait > 0:
        raise ApiError(
            429,
            f"token {principal.name!r} is over its ingest rate of "
            f"{settings.api.ingest_rate_samples_per_s:g} samples/s; retry in {wait:.1f} s",
            headers={"Retry-After": TokenBucketLimiter.retry_after_header(wait)},
        )
    kept, positions, refused, stamped = _bind_site(samples, principal.site)
    errors += [where(i).model_copy(update={"message": msg}) for i, msg in refused]
    part = partition(kept)
    errors += [
        where(positions[e.index]).model_copy(update={"message": e.message}) for e in part.errors
    ]
    if part.valid:
        try:
            store.write_valid(part.valid)
        except StoreUnavailable as exc:
            raise ApiError(503, f"metrics store unavailable, nothing was stored: {exc}") from None
        except StoreError as exc:
            raise ApiError(422, f"metrics store refused the batch: {exc}") from None
        _mark_seen(db, part.valid)
    errors.sort(key=lambda e: (e.line or 0, e.index or 0))
    INGESTED.labels("accepted").inc(len(part.valid))
    INGESTED.labels("rejected").inc(len(errors))
    cap = settings.api.max_errors_reported
    return IngestResult(
        accepted=len(part.valid),
        rejected=len(errors),
        site_stamped=stamped,
        errors=errors[:cap],
        errors_total=len(errors),
        errors_truncated=len(errors) > cap,
    )


def _mark_seen(db: Session, samples: Sequence[Sample]) -> None:
    """Record each registered device's newest sample time (the inventory's last_seen_at)."""
    # A device cannot have been seen after now: a clock gone wild must not move it ahead (and
    # far-future stamps do not even fit a datetime).
    received = now_ms()
    newest: dict[str, int] = {}
    for sample in samples:
        stamp = min(sample.timestamp_ms, received)
        if newest.get(sample.device, -1) < stamp:
            newest[sample.device] = stamp
    # One query finds the registered ones (and loads them, so mark_seen needs no more reads).
    known = set(db.scalars(select(Device.id).where(Device.id.in_(list(newest)))))
    seen = {d: datetime.fromtimestamp(newest[d] / 1000, tz=UTC) for d in known}
    if seen:
        db.scalars(select(Device).where(Device.id.in_(list(seen)))).all()
        fleet.mark_seen(db=db, seen=seen)


@router.post(
    "/ingest",
    response_model=IngestResult,
    summary="Write a batch of samples (line protocol or dense), reporting each bad one",
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=error_responses(400, 413, 415, 422, 429, 503),
)
async def ingest(
    request: Request,
    precision: Literal["ns", "us", "ms", "s"] = Query(
        "ms", description="unit of line protocol timestamps"
    ),
    principal: Principal = Depends(require_scope("ingest")),
    settings: Settings = Depends(get_settings),
    store: MetricsStore = Depends(get_store),
    db: Session = Depends(get_db, scope="function"),
) -> IngestResult:
    media_type = request.headers.get("content-type", LINE_PROTOCOL).split(";")[0].strip().lower()
    if media_type not in (LINE_PROTOCOL, DENSE):
        raise ApiError(
            415,
            f"Content-Type {media_type!r} is not accepted; send {LINE_PROTOCOL} (line protocol) "
            f"or {DENSE}",
        )
    body = await _read_body(request, settings.api.max_request_bytes)
    return await run_in_threadpool(
        _ingest,
        body=body,
        media_type=media_type,
        precision=precision,
        principal=principal,
        settings=settings,
        store=store,
        limiter=request.app.state.ingest_limiter,
        db=db,
    )
