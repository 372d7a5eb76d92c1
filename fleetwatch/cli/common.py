"""What every command shares: loading settings once and failing clearly on bad config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from fleetwatch.settings import ConfigError, Settings, load_settings


@dataclass
class _State:
    config_file: Path | None = None


state = _State()


def settings(**overrides: Any) -> Settings:
    """Load settings for a command; a bad field ends the command with exit status 2, named."""
    try:
        return load_settings(state.config_file, **overrides)
    except ConfigError as exc:
        typer.echo(f"fleetwatch: {exc}", err=True)
        raise typer.Exit(2) from None
