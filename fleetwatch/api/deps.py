"""FastAPI dependencies every router uses: settings, state DB session, metrics store, auth.

Usage in a router::

    from fleetwatch.api.deps import Principal, get_db, get_store, require_scope

    @router.get("/things/{id}", responses=error_responses(404))
    def get_thing(
        id: str,
        db: Session = Depends(get_db, scope="function"),
        principal: Principal = Depends(require_scope("read")),
    ) -> ThingOut: ...

Every endpoint declares exactly one scope with ``require_scope``; the app publishes it in the
OpenAPI as the operation's ``security`` scopes and as ``x-required-scope``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from fleetwatch.api import service
from fleetwatch.api.errors import ApiError
from fleetwatch.api.service import SCOPES
from fleetwatch.settings import Settings
from fleetwatch.store import MetricsStore

BEARER_SCHEME = "bearerAuth"
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    description="`Authorization: Bearer fwt_…` — created with `fleetwatch token create`. "
    "Scopes: read, ingest, alerts, actions, admin (admin implies all).",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id and name, its scopes and the site it is bound to (if any)."""

    token_id: str
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    site: str | None = None

    def allows(self, scope: str) -> bool:
        return service.grants(self.scopes, scope)


INSECURE_LOCAL = Principal(
    token_id="insecure-local", name="insecure-local", scopes=frozenset(SCOPES), site=None
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_db(request: Request) -> Iterator[Session]:
    """One state DB session per request: committed on success, rolled back on error.

    Declare it with ``Depends(get_db, scope="function")`` so the commit happens before the
    response is sent; with FastAPI's default scope it would run after.
    """
    session = _session_factory(request)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_store(request: Request) -> MetricsStore:
    store: MetricsStore = request.app.state.store
    return store


def _unauthenticated(message: str) -> ApiError:
    return ApiError(
        401,
        message,
        code="unauthenticated",
        headers={"WWW-Authenticate": 'Bearer realm="fleetwatch"'},
    )


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller of a request, its token looked up now: a revoked token fails at once."""
    if request.app.state.insecure_local:
        return INSECURE_LOCAL
    if credentials is None or not credentials.credentials:
        raise _unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
    if credentials.scheme.lower() != "bearer":
        raise _unauthenticated("authorization scheme must be Bearer")
    with _session_factory(request)() as db:
        row = service.authenticate(db=db, token=credentials.credentials)
        if row is None:
            raise _unauthenticated("invalid, expired or revoked token")
        return Principal(
            token_id=row.id, name=row.name, scopes=frozenset(row.scopes), site=row.site
        )


def require_scope(scope: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and requires ``scope`` (admin implies all).

    Missing/invalid/revoked token: 401; token without the scope: 403; both with the error body.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(BEARER, scopes=[scope]),
    ) -> Principal:
        principal = authenticate(request, credentials)
        if not principal.allows(scope):
            raise ApiError(
                403,
                f"token {principal.name!r} lacks scope {scope!r} "
                f"(has: {', '.join(sorted(principal.scopes))})",
                code="forbidden",
            )
        return principal

    dependency.required_scope = scope  # type: ignore[attr-defined]
    dependency.__name__ = f"require_scope_{scope}"
    return dependency


_KNOWN_QUERY: dict[int, frozenset[str]] = {}


def _query_names(dependant: Any) -> frozenset[str]:
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(param.alias for param in current.query_params)
        stack.extend(current.dependencies)
    return frozenset(names)


def reject_unknown_query_params(request: Request) -> None:
    """A misspelt filter (``?sit=plant-a``) is a 422 naming it, never silently ignored.

    Opt in per router: ``APIRouter(dependencies=[Depends(reject_unknown_query_params)])``.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        known = _KNOWN_QUERY[id(route)] = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        hint = f"known: {', '.join(sorted(known))}" if known else "this operation takes none"
        raise ApiError(
            422,
            f"unknown query parameter(s) {', '.join(map(repr, unknown))}; {hint}",
            details=[
                {"loc": ["query", name], "msg": "unknown query parameter"} for name in unknown
            ],
        )
