"""The alerting configuration file: rules, route tree, receivers, inhibition, maintenance.

YAML (``.yaml``/``.yml``) or TOML (``.toml``); without a file the built-in default rule set
(``default_rules.yaml`` beside this module) is used. Validation errors name the rule and field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleetwatch.alerting.config import AlertingSettings
from fleetwatch.alerting.routing import InhibitRule, MaintenanceWindow, Route, walk
from fleetwatch.alerting.routing import compile_routes as _compile
from fleetwatch.alerting.rules import Rule

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")


class RulesError(ValueError):
    """The rules file is unreadable or invalid; the message names each bad rule and field."""


class Receiver(BaseModel):
    """A named destination: a notifier plugin and its config (validated by the plugin)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    notifier: str | None = Field(None, description="plugin name; none = record only")
    config: dict[str, Any] = Field(default_factory=dict)
    send_resolved: bool = True
    max_alerts: int = Field(0, ge=0, description="alerts per message; 0 = all")


class AlertingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)
    route: Route = Field(default_factory=lambda: Route.model_validate({"receiver": "default"}))
    receivers: list[Receiver] = Field(
        default_factory=lambda: [Receiver.model_validate({"name": "default"})]
    )
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> AlertingConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        names = {r.name for r in self.receivers}
        if len(names) != len(self.receivers):
            raise ValueError("receiver names must be unique")
        for node in walk(_compile(self.route)):
            for ref in (node.receiver, node.escalate_to):
                if ref and ref not in names:
                    raise ValueError(f"route {node.path} names unknown receiver {ref!r}")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)


def parse_config(raw: dict[str, Any], *, source: str = "<rules>") -> AlertingConfig:
    try:
        return AlertingConfig.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(describe(exc, raw, source)) from None


def describe(exc: ValidationError, raw: dict[str, Any], source: str) -> str:
    lines = [f"invalid alerting config in {source}:"]
    rules = raw.get("rules") if isinstance(raw, dict) else None
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "<root>"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and rules:
            entry = rules[loc[1]] if loc[1] < len(rules) else {}
            name = entry.get("name", "?") if isinstance(entry, dict) else "?"
            # loc[2] is the discriminator tag (the rule kind); the field follows it
            rest = [str(p) for p in loc[3:]] if len(loc) > 3 else [str(p) for p in loc[2:]]
            where = f"rule {name!r} (rules[{loc[1]}]) field {'.'.join(rest) or 'kind'}"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"cannot parse rules file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(f"rules file {path} must hold a mapping at the top level")
    return data


_cache: dict[tuple[str, float], AlertingConfig] = {}


def load_config(settings: AlertingSettings) -> AlertingConfig:
    """The configured rules (cached per file and modification time) or the default set."""
    path = settings.rules_file or DEFAULT_RULES
    try:
        key = (str(path.resolve()), path.stat().st_mtime)
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from None
    cached = _cache.get(key)
    if cached is None:
        cached = parse_config(read_file(path), source=str(path))
        _cache.clear()
        _cache[key] = cached
    return cached
