from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from pydantic import BaseModel

from fleetwatch.plugins import (
    GROUPS,
    Collector,
    CollectorCapabilities,
    CollectResult,
    DuplicatePlugin,
    PluginError,
    PluginLoadError,
    PluginRegistry,
)


class _Config(BaseModel):
    pass


class Dummy(Collector):
    name = "dummy"
    config_model = _Config
    capabilities = CollectorCapabilities(placements=frozenset({"gateway"}))

    def collect(self) -> CollectResult:
        return CollectResult()


class NotAPlugin:
    pass


def test_register_and_get() -> None:
    registry = PluginRegistry()
    registry.register("fleetwatch.collectors", "dummy", Dummy)
    assert registry.get("fleetwatch.collectors", "dummy") is Dummy
    assert registry.names("fleetwatch.collectors") == ["dummy"]


def test_duplicates_are_rejected_naming_both() -> None:
    registry = PluginRegistry()
    registry.register("fleetwatch.collectors", "dummy", Dummy)
    with pytest.raises(DuplicatePlugin, match="already registered by .*Dummy"):
        registry.register("fleetwatch.collectors", "dummy", Dummy)


def test_wrong_base_class_and_unknown_group_are_rejected() -> None:
    registry = PluginRegistry()
    with pytest.raises(PluginError, match="does not subclass"):
        registry.register("fleetwatch.collectors", "x", NotAPlugin)
    with pytest.raises(PluginError, match="does not subclass"):
        registry.register("fleetwatch.notifiers", "x", Dummy)
    with pytest.raises(PluginError, match="unknown plugin group"):
        registry.register("fleetwatch.nope", "x", Dummy)
    with pytest.raises(PluginError, match="no plugin 'x'"):
        registry.get("fleetwatch.collectors", "x")


def test_a_plugin_that_does_not_import_fails_loudly() -> None:
    broken = EntryPoint("broken", "fleetwatch_no_such_module.plugin:Thing", "fleetwatch.collectors")
    with pytest.raises(PluginLoadError, match="fleetwatch.collectors:broken .* failed to import"):
        PluginRegistry.from_entry_points(eps=[broken])


def test_duplicate_entry_points_fail() -> None:
    ep = EntryPoint("dummy", f"{__name__}:Dummy", "fleetwatch.collectors")
    with pytest.raises(DuplicatePlugin):
        PluginRegistry.from_entry_points(eps=[ep, ep])


def test_every_declared_plugin_imports() -> None:
    registry = PluginRegistry.from_entry_points()
    assert {"iotedge", "greengrass", "coral", "jetson", "tegrastats"} <= set(
        registry.names("fleetwatch.collectors")
    )
    for group in GROUPS:
        for name in registry.names(group):
            plugin = registry.get(group, name)
            assert issubclass(plugin.config_model, BaseModel), f"{group}:{name}"
