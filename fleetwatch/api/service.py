"""API tokens: create (shown once), authenticate (constant-time), revoke, list.

A token reads ``fwt_<id>_<secret>``: the id finds the row, the SHA-256 of the whole token is
compared with the stored hash in constant time. The secret has 256 bits of entropy, so a plain
SHA-256 is enough (no password-style stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetwatch.api.models import ApiToken
from fleetwatch.db import utcnow

SCOPES: tuple[str, ...] = ("read", "ingest", "alerts", "actions", "admin")
ADMIN = "admin"
TOKEN_PREFIX = "fwt_"
_TOKEN_RE = re.compile(r"^fwt_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


class TokenError(ValueError):
    """A token request names an unknown scope or an invalid field."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_scopes(scopes: Iterable[str]) -> list[str]:
    """Sorted unique scopes; an unknown scope raises :class:`TokenError` naming it."""
    out = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in out if s not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not out:
        raise TokenError(f"give at least one scope of {', '.join(SCOPES)}")
    return out


def grants(scopes: Iterable[str], scope: str) -> bool:
    """Whether a scope set allows ``scope``; ``admin`` implies every scope."""
    held = set(scopes)
    return ADMIN in held or scope in held


def create_token(
    *,
    db: Session,
    name: str,
    scopes: Iterable[str],
    site: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token and return it with its clear text, which is never stored or shown again."""
    if not name.strip():
        raise TokenError("a token needs a name")
    clean = normalise_scopes(scopes)
    token_id = secrets.token_hex(8)
    clear = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    row = ApiToken(
        id=token_id,
        name=name.strip(),
        token_hash=hash_token(clear),
        scopes=clean,
        site=site or None,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return row, clear


def authenticate(*, db: Session, token: str) -> ApiToken | None:
    """The active token row matching ``token``, or None (unknown, malformed, revoked, expired)."""
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    row = db.get(ApiToken, match.group(1))
    if row is None:
        # Compare anyway so unknown ids and wrong secrets take the same time.
        hmac.compare_digest(hash_token(token), "0" * 64)
        return None
    if not hmac.compare_digest(hash_token(token), row.token_hash):
        return None
    return row if row.active else None


def revoke_token(*, db: Session, token_id: str) -> ApiToken | None:
    """Revoke a token by id (idempotent); None when no such token exists."""
    row = db.get(ApiToken, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.flush()
    return row


def list_tokens(*, db: Session, include_revoked: bool = False) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(db.scalars(query).all())
