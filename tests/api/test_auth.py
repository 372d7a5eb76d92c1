"""Every operation refuses a missing, wrong-scope or revoked token, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetwatch.api import service
from fleetwatch.api.app import InsecureLocalRefused, check_insecure_local, create_app
from fleetwatch.api.service import SCOPES
from fleetwatch.cli.main import app as cli
from tests.api.conftest import ApiEnv, bearer

# Probes and the OpenAPI document are public on purpose (orchestrator probes, Prometheus scrape).
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    ops = []
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            ops.append((method, path, op.get("x-required-scope")))
    return ops


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _call(env: ApiEnv, method: str, path: str, token: str | None) -> Any:
    headers = bearer(token) if token else {}
    return env.client.request(method.upper(), _concrete(path), headers=headers)


def _assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_every_operation_declares_a_scope_in_the_openapi(env: ApiEnv) -> None:
    openapi = env.client.get("/openapi.json").json()
    ops = _operations(openapi)
    assert len(ops) >= 10
    for method, path, scope in ops:
        if (method, path) in PUBLIC:
            assert scope is None
            continue
        assert scope in SCOPES, f"{method.upper()} {path} declares no scope"
        op = openapi["paths"][path][method]
        assert op["security"] == [{"bearerAuth": [scope]}]
        for code in ("401", "403", "422", "500"):
            ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorResponse"


def test_every_operation_refuses_missing_wrong_scope_and_revoked_tokens(env_any_db: ApiEnv) -> None:
    env = env_any_db
    openapi = env.client.get("/openapi.json").json()
    tokens = {scope: env.token(scope) for scope in SCOPES}
    checked = 0
    for method, path, scope in _operations(openapi):
        if scope is None:
            continue
        _assert_error(_call(env, method, path, None), 401, "unauthenticated")
        _assert_error(
            _call(env, method, path, "fwt_0123456789abcdef_" + "x" * 43), 401, "unauthenticated"
        )
        _assert_error(_call(env, method, path, "not-a-token"), 401, "unauthenticated")
        others = [s for s in SCOPES if s not in (scope, "admin")]
        for other in others:
            _assert_error(_call(env, method, path, tokens[other]), 403, "forbidden")
        # The right scope (and admin) get past auth: whatever the answer, it is not 401/403.
        for allowed in {scope, "admin"}:
            assert _call(env, method, path, tokens[allowed]).status_code not in (401, 403)
        checked += 1
    assert checked >= 8
    env.revoke(tokens["admin"])
    env.revoke(tokens["read"])
    for method, path, scope in _operations(openapi):
        if scope is not None:
            _assert_error(_call(env, method, path, tokens["admin"]), 401, "unauthenticated")
    _assert_error(_call(env, "get", "/api/v1/devices", tokens["read"]), 401, "unauthenticated")


def test_revoked_token_stops_working_on_the_very_next_request(env_any_db: ApiEnv) -> None:
    env = env_any_db
    token = env.token("read")
    assert env.client.get("/api/v1/sites", headers=bearer(token)).status_code == 200
    env.revoke(token)
    response = env.client.get("/api/v1/sites", headers=bearer(token))
    _assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_secret_is_checked_not_only_its_id(env: ApiEnv) -> None:
    token = env.token("read")
    forged = token[: token.rindex("_") + 1] + "A" * 43
    _assert_error(env.client.get("/api/v1/sites", headers=bearer(forged)), 401, "unauthenticated")


def test_tokens_are_stored_hashed_and_admin_implies_every_scope(env_any_db: ApiEnv) -> None:
    env = env_any_db
    with env.factory() as db:
        row, clear = service.create_token(db=db, name="ops", scopes=["admin"])
        db.commit()
        assert clear not in (row.token_hash, row.id)
        assert row.token_hash == service.hash_token(clear)
        assert service.authenticate(db=db, token=clear) is not None
    assert all(service.grants(["admin"], s) for s in SCOPES)
    assert not service.grants(["read"], "ingest")
    with pytest.raises(service.TokenError, match="unknown scope"):
        service.normalise_scopes(["read", "write"])


def test_insecure_local_grants_everything_without_token(tmp_path: Any, env: ApiEnv) -> None:
    app = create_app(
        env.settings, store=env.store, session_factory=env.factory, insecure_local=True
    )
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        assert client.get("/api/v1/sites").status_code == 200
        assert client.put("/api/v1/sites/a", json={"name": "A"}).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_insecure_local_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(InsecureLocalRefused, match="loopback"):
        check_insecure_local(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_insecure_local_allows_loopback(host: str) -> None:
    check_insecure_local(host)


def test_cli_refuses_insecure_local_on_public_bind(tmp_path: Any) -> None:
    result = CliRunner().invoke(
        cli,
        ["api", "--host", "0.0.0.0", "--insecure-local"],
        env={"FLEETWATCH_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "loopback" in result.output


def test_cli_token_create_list_revoke(tmp_path: Any, env: ApiEnv) -> None:
    runner = CliRunner()
    cli_env = {"FLEETWATCH_DB__URL": env.settings.database_url}
    created = runner.invoke(
        cli, ["token", "create", "--name", "gw-a", "-s", "ingest", "--site", "plant-a"], env=cli_env
    )
    assert created.exit_code == 0, created.output
    clear = created.stdout.strip().splitlines()[-1]
    assert clear.startswith("fwt_")
    token_id = clear.split("_")[1]
    listed = runner.invoke(cli, ["token", "list"], env=cli_env)
    assert token_id in listed.stdout and "site=plant-a" in listed.stdout
    assert clear not in listed.stdout
    ok = env.client.post(
        "/api/v1/ingest", content=b"m,device=d,site=plant-a value=1 1000\n", headers=bearer(clear)
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    revoked = runner.invoke(cli, ["token", "revoke", token_id], env=cli_env)
    assert revoked.exit_code == 0, revoked.output
    again = env.client.post(
        "/api/v1/ingest", content=b"m,device=d,site=plant-a value=1 1000\n", headers=bearer(clear)
    )
    assert again.status_code == 401
    bad = runner.invoke(cli, ["token", "create", "--name", "x", "-s", "write"], env=cli_env)
    assert bad.exit_code == 2 and "unknown scope" in bad.output
