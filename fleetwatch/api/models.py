"""ORM model of API bearer tokens (stored hashed, never in clear)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fleetwatch.db import Base, UTCDateTime, utcnow


class ApiToken(Base):
    """A bearer token: its public id, the SHA-256 of the secret token, scopes and optional site.

    The token itself (``fwt_<id>_<secret>``) is shown once at creation; only its hash is kept.
    A token bound to a site may only write samples of that site.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the whole token
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    site: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_api_tokens_name", "name"),)

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())
