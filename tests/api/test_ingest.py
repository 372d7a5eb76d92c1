"""Ingest: malformed lines are reported and the rest stored; gzip, limits, site binding, rates."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetwatch.api.app import create_app
from fleetwatch.db import session_scope
from fleetwatch.fleet import service as fleet
from fleetwatch.fleet.schemas import DeviceIn
from fleetwatch.lineprotocol import encode
from fleetwatch.store import open_store
from fleetwatch.store.influxd_process import InfluxdProcess
from fleetwatch.telemetry import Sample, now_ms
from tests.api.conftest import ApiEnv, TestClient, bearer
from tests.conftest import influx_settings

# An hour ago, whole minute: inside any retention policy of the store.
T0 = (now_ms() // 60_000 - 60) * 60_000

MIXED_BATCH = f"""\
temp_celsius,device=d1,site=s1,sensor=tj value=61.5 {T0}
temp_celsius,device=d1,site=s1,sensor=tj value=oops {T0 + 1000}
# a comment, ignored

temp_celsius,device=d1,site=s1,sensor=tj value=62.0 {T0 + 2000}
this line has no fields
temp_celsius,device=d1,sensor=tj value=63 {T0 + 3000}
gpu,device=d1,site=s1 value=0.5,power_watts=12i {T0}
9bad,device=d1,site=s1 value=1 {T0}
temp_celsius,device=d1,site=s1,sensor=tj value=64 notatime
temp_celsius,device=d2,site=s1,sensor=tj value=50 {T0}
"""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _post(env: ApiEnv, body: bytes | str, token: str, **kwargs: object) -> object:
    headers = {**bearer(token), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    content = kwargs.pop("content", body.encode() if isinstance(body, str) else body)
    return env.client.post("/api/v1/ingest", content=content, headers=headers, **kwargs)


def test_malformed_lines_are_reported_and_every_good_sample_stored(env: ApiEnv) -> None:
    response = _post(env, MIXED_BATCH, env.token("ingest"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 5
    assert result["rejected"] == 5
    assert result["errors_total"] == 5 and not result["errors_truncated"]
    by_line = {e["line"]: e["message"] for e in result["errors"]}
    assert sorted(by_line) == [2, 6, 7, 9, 10]
    assert "'oops' is not a number" in by_line[2]
    assert "expected 'measurement" in by_line[6]
    assert "missing required label 'site'" in by_line[7]
    assert "metric name '9bad'" in by_line[9]
    assert "timestamp 'notatime'" in by_line[10]
    store = env.store
    assert store.count() == 5
    tj = store.query_range(metric="temp_celsius", start=T0, end=T0 + 10_000, device="d1")
    assert tj["value"].tolist() == [61.5, 62.0]
    assert store.count("gpu") == 1 and store.count("gpu_power_watts") == 1
    power = store.latest(metric="gpu_power_watts")
    assert power["value"].tolist() == [12.0]


def test_gzip_body_and_precision(env: ApiEnv) -> None:
    token = env.token("ingest")
    body = gzip.compress(f"m,device=d,site=s value=1 {T0 // 1000}\n".encode())
    response = _post(
        env, body, token, params={"precision": "s"}, headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    ns = f"m,device=d,site=s value=2 {(T0 + 5) * 1_000_000 + 999}\n"
    assert _post(env, ns, token, params={"precision": "ns"}).json()["accepted"] == 1
    df = env.store.query_range(metric="m", start=T0, end=T0 + 10)
    assert df["time"].dt.as_unit("ms").astype("int64").tolist() == [T0, T0 + 5]


def test_resending_a_batch_does_not_duplicate(env: ApiEnv) -> None:
    token = env.token("ingest")
    samples = [
        Sample("m", {"device": "d", "site": "s"}, float(i), T0 + i * 1000) for i in range(50)
    ]
    body = encode(samples)
    for _ in range(3):
        assert _post(env, body, token).json()["accepted"] == 50
    assert env.store.count() == 50


def test_site_bound_token_cannot_write_another_site(env: ApiEnv) -> None:
    token = env.token("ingest", site="plant-a")
    body = (
        f"m,device=a1,site=plant-a value=1 {T0}\n"
        f"m,device=b1,site=plant-b value=2 {T0}\n"
        f"m,device=a2 value=3 {T0}\n"
    )
    result = _post(env, body, token).json()
    assert result["accepted"] == 2 and result["rejected"] == 1 and result["site_stamped"] == 1
    assert result["errors"][0]["line"] == 2
    assert "'plant-b' is not this token's site 'plant-a'" in result["errors"][0]["message"]
    series = env.store.list_series(metric="m")
    sites = {dict(labels)["device"]: dict(labels)["site"] for _, labels in series}
    assert sites == {"a1": "plant-a", "a2": "plant-a"}
    assert env.store.list_series(site="plant-b") == []


def test_body_limit_and_zip_bomb_answer_413(make_env: Callable[..., ApiEnv]) -> None:
    env = make_env(max_request_bytes=64 * 1024)
    token = env.token("ingest")
    big = b"m,device=d,site=s value=1 1000\n" * 5000  # ~155 KB raw
    response = _post(env, big, token)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    bomb = gzip.compress(b"0" * (50 * 2**20))  # 50 MiB of zeros in ~50 KB
    assert len(bomb) < 64 * 1024
    response = _post(env, bomb, token, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]["message"]
    assert env.store.count() == 0


def test_bad_gzip_and_unsupported_types(env: ApiEnv) -> None:
    token = env.token("ingest")
    bad = _post(env, b"not gzip at all", token, headers={"Content-Encoding": "gzip"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
    typed = _post(env, b"{}", token, headers={"Content-Type": "application/json"})
    assert typed.status_code == 415 and "text/plain" in typed.json()["error"]["message"]
    br = _post(env, b"x", token, headers={"Content-Encoding": "br"})
    assert br.status_code == 415


def test_rate_limit_answers_429_with_retry_after(make_env: Callable[..., ApiEnv]) -> None:
    env = make_env(ingest_rate_samples_per_s=1, ingest_burst_samples=100)
    token, other = env.token("ingest", name="a"), env.token("ingest", name="b")
    body = "".join(f"m,device=d,site=s value=1 {T0 + i}\n" for i in range(60))
    assert _post(env, body, token).status_code == 200
    limited = _post(env, body, token)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    assert _post(env, body, other).status_code == 200  # buckets are per token
    assert env.store.count() == 60


def test_error_list_is_capped_but_total_is_given(make_env: Callable[..., ApiEnv]) -> None:
    env = make_env(max_errors_reported=10)
    body = "garbage\n" * 300 + f"m,device=d,site=s value=1 {T0}\n"
    result = _post(env, body, env.token("ingest")).json()
    assert result["accepted"] == 1
    assert result["errors_total"] == 300 and len(result["errors"]) == 10
    assert result["errors_truncated"] is True
    assert [e["line"] for e in result["errors"]] == list(range(1, 11))


def test_invalid_utf8_line_is_reported_alone(env: ApiEnv) -> None:
    body = f"m,device=d,site=s value=1 {T0}\n".encode() + b"m,device=\xff,site=s value=1 1\n"
    result = _post(env, body, env.token("ingest")).json()
    assert result["accepted"] == 1
    assert result["errors"] == [{"line": 2, "index": None, "message": "line is not valid UTF-8"}]


def test_ingest_marks_registered_devices_seen(env: ApiEnv) -> None:
    with session_scope(env.factory) as db:
        fleet.upsert_device(db=db, device=DeviceIn(id="d1", site_id="s1"))
    _post(
        env,
        f"m,device=d1,site=s1 value=1 {T0}\nm,device=zz,site=s1 value=1 {T0}\n",
        env.token("ingest"),
    )
    with env.factory() as db:
        seen = fleet.get(db=db, device_id="d1").last_seen_at
    assert seen is not None and int(seen.timestamp() * 1000) == T0
    # A stamp from a clock gone wild (year 57894) is stored but never moves last_seen ahead.
    wild = _post(env, "m,device=d1,site=s1 value=1 1764806400000000\n", env.token("ingest"))
    assert wild.status_code == 200 and wild.json()["accepted"] == 1
    with env.factory() as db:
        seen = fleet.get(db=db, device_id="d1").last_seen_at
    assert seen is not None and seen.timestamp() * 1000 <= now_ms()


def test_dense_encoding_round_trip(env: ApiEnv) -> None:
    from fleetwatch.agent import codec

    samples = [
        Sample("m", {"device": "d", "site": "s"}, 20.5 + i / 10, T0 + i * 1000) for i in range(100)
    ]
    samples.append(Sample("m", {"device": "d"}, 1.0, T0))  # no site: rejected, by index
    body = codec.encode(samples)
    response = _post(env, body, env.token("ingest"), headers={"Content-Type": codec.CONTENT_TYPE})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 100
    assert result["errors"][0]["line"] is None and result["errors"][0]["index"] is not None
    df = env.store.query_range(metric="m", start=T0, end=T0 + 200_000)
    assert df["value"].tolist() == [s.value for s in samples[:100]]
    corrupt = _post(
        env, b"FWD1garbage", env.token("ingest"), headers={"Content-Type": codec.CONTENT_TYPE}
    )
    assert corrupt.status_code == 400 and "cannot be decoded" in corrupt.json()["error"]["message"]


def test_dense_without_codec_answers_415(env: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server build without the agent package: importing the codec fails.
    monkeypatch.setitem(sys.modules, "fleetwatch.agent.codec", None)
    response = _post(
        env,
        b"FWD1",
        env.token("ingest"),
        headers={"Content-Type": "application/x-fleetwatch-dense"},
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.fixture
def influx_env(influxd: InfluxdProcess, tmp_path: Path) -> Iterator[ApiEnv]:
    from fleetwatch.db import make_engine, migrations, session_factory

    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    migrations.upgrade(url)
    settings = influx_settings(influxd, tmp_path)
    engine = make_engine(url)
    store = open_store(settings)
    app = create_app(settings, store=store, session_factory=session_factory(engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiEnv(settings, session_factory(engine), store, client)  # type: ignore[arg-type]
    store.close()
    engine.dispose()


@pytest.mark.influx
def test_ingest_round_trip_through_real_influxdb(influx_env: ApiEnv) -> None:
    env = influx_env
    token = env.token("ingest")
    result = _post(
        env, gzip.compress(MIXED_BATCH.encode()), token, headers={"Content-Encoding": "gzip"}
    ).json()
    assert result["accepted"] == 5 and result["rejected"] == 5
    # Escaped tag values survive the trip through the store.
    escaped = f"m,device=d\\ 1,site=s\\,1 value=7 {T0}\n"
    assert _post(env, escaped, token).json()["accepted"] == 1
    read = env.token("read")
    answer = env.client.get(
        "/api/v1/metrics/range",
        params={
            "metric": "temp_celsius",
            "device": "d1",
            "start": _iso(T0),
            "end": _iso(T0 + 60_000),
        },
        headers=bearer(read),
    ).json()
    assert [s["values"] for s in answer["series"]] == [[61.5, 62.0]]
    assert answer["series"][0]["timestamps"] == [T0, T0 + 2000]
    latest = env.client.get(
        "/api/v1/metrics/latest", params={"metric": "m"}, headers=bearer(read)
    ).json()
    assert latest["series"] == [
        {"labels": {"device": "d 1", "site": "s,1"}, "timestamp": T0, "value": 7.0}
    ]


def test_chunked_body_without_length_is_cut_at_the_limit(make_env: Callable[..., ApiEnv]) -> None:
    env = make_env(max_request_bytes=64 * 1024)

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"m,device=d,site=s value=1 1000\n" * 100  # ~3 KB each, ~310 KB in all

    response = _post(env, b"", env.token("ingest"), content=chunks())
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["error"]["message"]
    assert env.store.count() == 0
