"""The REST API application factory and its router registry.

A domain exposes ``router: APIRouter`` in a module and adds that module's path to
:data:`ROUTER_MODULES` (one line). Routers are mounted under ``/api/v1`` unless the module sets
``prefix`` (e.g. ``prefix = "/scheduler"`` for the Kubernetes scheduler extender). A module that
fails to import fails :func:`create_app` loudly: a declared router is never silently missing.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from fleetwatch import __version__
from fleetwatch.api import probes
from fleetwatch.api.deps import BEARER_SCHEME
from fleetwatch.api.errors import ErrorResponse, error_json, error_responses, install_error_handlers
from fleetwatch.api.ratelimit import TokenBucketLimiter
from fleetwatch.settings import Settings
from fleetwatch.store import MetricsStore

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

# Modules exposing ``router: APIRouter``; each domain adds one line.
ROUTER_MODULES: tuple[str, ...] = (
    "fleetwatch.fleet.router",
    "fleetwatch.analysis.router",
    "fleetwatch.api.metrics",
    "fleetwatch.api.ingest",
    "fleetwatch.alerting.router",
    "fleetwatch.actions.router",
    "fleetwatch.actions.hints_router",
    "fleetwatch.actions.extender",
)

DESCRIPTION = """\
fleetwatch REST API: fleet inventory, metrics, ingest, health, alerts, actions and orchestrator
hints. Authenticate with `Authorization: Bearer <token>` (`fleetwatch token create`). Each
operation names the scope it needs in `security` and in `x-required-scope`; `admin` implies all.
Every error answers with the `ErrorResponse` body.
"""


class InsecureLocalRefused(ValueError):
    """``--insecure-local`` was asked for on a non-loopback bind address."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_insecure_local(host: str) -> None:
    """Refuse the token-less mode anywhere but on a loopback address."""
    if not is_loopback(host):
        raise InsecureLocalRefused(
            f"--insecure-local serves every scope without a token and is only allowed on a "
            f"loopback address (127.0.0.1, ::1, localhost); refusing to bind it to {host!r}"
        )


def create_app(
    settings: Settings,
    *,
    store: MetricsStore | None = None,
    session_factory: sessionmaker[Session] | None = None,
    insecure_local: bool = False,
) -> FastAPI:
    """Build the API. Store and state DB come from ``settings`` unless given (tests, embedding).

    Migrations are not applied here: run ``fleetwatch db upgrade`` first.
    """
    owned: list[Any] = []
    if store is None:
        from fleetwatch.store import open_store

        store = open_store(settings)
        owned.append(store)
    if session_factory is None:
        from fleetwatch.db import load_models, make_engine
        from fleetwatch.db import session_factory as make_factory

        load_models()
        engine = make_engine(settings.database_url, echo=settings.db.echo)
        session_factory = make_factory(engine)
        owned.append(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for resource in owned:
            (getattr(resource, "close", None) or resource.dispose)()

    app = FastAPI(
        title="fleetwatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.session_factory = session_factory
    app.state.insecure_local = insecure_local
    app.state.ingest_limiter = TokenBucketLimiter(
        settings.api.ingest_rate_samples_per_s, settings.api.ingest_burst_samples
    )
    if insecure_local:
        log.warning(
            "INSECURE LOCAL MODE: every request gets every scope without a token. "
            "For the demo on loopback only."
        )

    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_request_bytes)
    app.add_middleware(probes.PrometheusMiddleware)
    app.include_router(probes.router)
    for module_path in ROUTER_MODULES:
        module = importlib.import_module(module_path)
        app.include_router(module.router, prefix=getattr(module, "prefix", API_PREFIX))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class BodyLimitMiddleware:
    """Answer 413 before reading a body whose declared Content-Length is over the limit.

    Handlers that stream bodies without a length (ingest) enforce the same limit while reading.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope.get("headers", ()):
                if key == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        length = -1
                    if length < 0:
                        await error_json(400, "Content-Length is not a number")(
                            scope, receive, send
                        )
                        return
                    if length > self.max_bytes:
                        message = f"body of {length} bytes exceeds the limit of {self.max_bytes}"
                        await error_json(413, message)(scope, receive, send)
                        return
        await self.app(scope, receive, send)


# OpenAPI ---------------------------------------------------------------------------------------

# Any request can be malformed (400), unauthenticated, forbidden, invalid or hit a bug.
_SCOPED_ERRORS = (400, 401, 403, 422, 500)


def required_scope(operation: dict[str, Any]) -> str | None:
    """The scope an OpenAPI operation requires, read from its bearer ``security`` requirement."""
    for requirement in operation.get("security", ()):
        scopes = requirement.get(BEARER_SCHEME)
        if scopes:
            return str(scopes[0])
    return None


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model_schema in _error_schemas().items():
        components.setdefault(name, model_schema)
    defaults = error_responses(*_SCOPED_ERRORS, 429, 413, 415, 503, 404, 409)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            scope = required_scope(operation)
            if scope:
                operation["x-required-scope"] = scope
            responses = operation.setdefault("responses", {})
            for code in _SCOPED_ERRORS if scope else (500,):
                responses.setdefault(str(code), _error_response(defaults[code]))
            for code, response in list(responses.items()):
                if code.startswith(("4", "5")) and not _is_error_response(response):
                    responses[code] = _error_response(defaults.get(int(code), response))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _error_schemas() -> dict[str, Any]:
    generated = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = generated.pop("$defs", {})
    return {"ErrorResponse": generated, **defs}


def _is_error_response(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/ErrorResponse"))


def _error_response(entry: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI response object whose JSON body is the ErrorResponse schema, with an example."""
    example = entry.get("content", {}).get("application/json", {}).get("example")
    content: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
    if example is not None:
        content["example"] = example
    return {
        "description": entry.get("description", "Error"),
        "content": {"application/json": content},
    }
