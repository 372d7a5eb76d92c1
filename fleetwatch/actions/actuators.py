"""Build the configured actuators from the ``fleetwatch.actuators`` entry points."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from fleetwatch.actions.config import ActionsSettings
from fleetwatch.plugins.actuator import Actuator
from fleetwatch.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)


def _configured(name: str, config: BaseModel | None) -> bool:
    # An actuator with no endpoint configured is skipped: dry-run plans then say so.
    if config is None:
        return False
    if name == "kubernetes":
        return bool(getattr(config, "host", None) or getattr(config, "kubeconfig", None))
    if name == "greengrass":
        return bool(getattr(config, "region", None) or getattr(config, "endpoint_url", None))
    return True


def build_actuators(
    settings: ActionsSettings, registry: PluginRegistry | None = None
) -> list[Actuator]:
    """One instance per actuator named in ``[actions] actuators`` that has its section set."""
    registry = registry or PluginRegistry.from_entry_points(["fleetwatch.actuators"])
    out: list[Actuator] = []
    for name in settings.actuators:
        cls: type[Actuator] = registry.get("fleetwatch.actuators", name)
        section = getattr(settings, name, None)
        if not _configured(name, section):
            log.info("actuator %s has no endpoint configured; skipped", name)
            continue
        config = cls.config_model.model_validate(section.model_dump() if section else {})
        out.append(cls(config))
    return out


def close_all(actuators: list[Actuator]) -> None:
    for actuator in actuators:
        actuator.close()
