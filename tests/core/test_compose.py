"""compose.yaml cannot run here (no Docker engine), so check what it would run is real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import typer.main
import yaml
from pydantic import BaseModel

from fleetwatch.cli import app
from fleetwatch.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def _services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _resolve(command: list[str]) -> click.Command:
    """Walk the click tree of `fleetwatch` for a compose command line; fail if it does not exist."""
    assert command[0] == "fleetwatch", command
    node: click.Command = typer.main.get_command(app)
    args = command[1:]
    while hasattr(node, "get_command") and args and not args[0].startswith("-"):
        sub = node.get_command(node.context_class(node), args[0])
        assert sub is not None, f"`{' '.join(command)}`: no command {args[0]!r}"
        node, args = sub, args[1:]
    options = {opt for p in node.params for opt in getattr(p, "opts", [])}
    for arg in args:
        if arg.startswith("-"):
            assert arg in options, f"`{' '.join(command)}`: {arg} is not an option of it"
    return node


def _setting_exists(env_name: str) -> bool:
    path = env_name.removeprefix("FLEETWATCH_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(path) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_expected_services_are_declared() -> None:
    services = _services()
    for name in [
        "influxdb",
        "postgres",
        "redis",
        "migrate",
        "worker",
        "beat",
        "api",
        "dashboard",
        "agent",
    ]:
        assert name in services, name


def test_every_fleetwatch_command_exists() -> None:
    checked = 0
    for _name, service in _services().items():
        command = service.get("command")
        if command and command[0] == "fleetwatch":
            _resolve(command)
            checked += 1
    assert checked >= 6


def test_every_fleetwatch_environment_variable_is_a_real_setting() -> None:
    seen = 0
    for name, service in _services().items():
        for key in service.get("environment") or {}:
            if key.startswith("FLEETWATCH_"):
                assert _setting_exists(key), f"{name}: {key} is not a setting"
                seen += 1
    assert seen >= 8


def test_resolver_rejects_fakes() -> None:
    import pytest

    with pytest.raises(AssertionError):
        _resolve(["fleetwatch", "no-such-command"])
    with pytest.raises(AssertionError):
        _resolve(["fleetwatch", "db", "upgrade", "--no-such-flag"])
    assert not _setting_exists("FLEETWATCH_STORE__NO_SUCH")
