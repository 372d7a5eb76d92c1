"""An injectable registry of plugins, filled from entry points or by hand in tests."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

GROUPS = (
    "fleetwatch.collectors",
    "fleetwatch.notifiers",
    "fleetwatch.actuators",
    "fleetwatch.detectors",
)


class PluginError(Exception):
    """Base of registry errors."""


class DuplicatePlugin(PluginError):
    pass


class PluginLoadError(PluginError):
    pass


class PluginRegistry:
    """Plugins by group and name. Validated at :meth:`register`; tests build a fresh one."""

    def __init__(self) -> None:
        self._plugins: dict[str, dict[str, type]] = {group: {} for group in GROUPS}

    def register(self, group: str, name: str, plugin: type) -> None:
        if group not in self._plugins:
            raise PluginError(f"unknown plugin group {group!r}; known: {', '.join(GROUPS)}")
        declared = getattr(plugin, "plugin_group", None)
        if declared != group:
            raise PluginError(
                f"{plugin.__module__}.{plugin.__qualname__} registered as {group}:{name} "
                f"does not subclass that group's base class (its plugin_group is {declared!r})"
            )
        existing = self._plugins[group].get(name)
        if existing is not None:
            raise DuplicatePlugin(
                f"{group}:{name} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}; refusing "
                f"{plugin.__module__}.{plugin.__qualname__}"
            )
        self._plugins[group][name] = plugin

    def get(self, group: str, name: str) -> type:
        try:
            return self._plugins[group][name]
        except KeyError:
            known = ", ".join(sorted(self._plugins.get(group, {}))) or "none"
            raise PluginError(f"no plugin {name!r} in {group}; known: {known}") from None

    def names(self, group: str) -> list[str]:
        return sorted(self._plugins[group])

    @classmethod
    def from_entry_points(
        cls, groups: Iterable[str] = GROUPS, *, eps: Iterable[EntryPoint] | None = None
    ) -> PluginRegistry:
        """Load every declared plugin; one that does not import fails loudly, naming it."""
        registry = cls()
        wanted = set(groups)
        if eps is None:
            candidates = [ep for group in sorted(wanted) for ep in entry_points(group=group)]
        else:
            candidates = list(eps)
        for ep in candidates:
            if ep.group not in wanted:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {ep.group}:{ep.name} = {ep.value} failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            registry.register(ep.group, ep.name, plugin)
        return registry
