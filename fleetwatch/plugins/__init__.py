"""Plugin contracts and the plugin registry.

Plugins are discovered through ``pyproject.toml`` entry points in four groups:
``fleetwatch.collectors``, ``fleetwatch.notifiers``, ``fleetwatch.actuators`` and
``fleetwatch.detectors``. Each group has one small abstract base class in this package; its
docstring says how to add a plugin. Collectors may import this package and nothing else of
fleetwatch.
"""

from fleetwatch.plugins.collector import (
    CollectError,
    Collector,
    CollectorCapabilities,
    CollectResult,
)
from fleetwatch.plugins.registry import (
    GROUPS,
    DuplicatePlugin,
    PluginError,
    PluginLoadError,
    PluginRegistry,
)
from fleetwatch.telemetry import Sample, make_sample

__all__ = [
    "GROUPS",
    "CollectError",
    "CollectResult",
    "Collector",
    "CollectorCapabilities",
    "DuplicatePlugin",
    "PluginError",
    "PluginLoadError",
    "PluginRegistry",
    "Sample",
    "make_sample",
]
