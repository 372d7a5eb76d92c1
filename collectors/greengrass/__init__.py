"""AWS IoT Greengrass v2: fleet status and nucleus emitter over MQTT, and the greengrassv2 API.

Entry points: ``greengrass`` = :class:`collectors.greengrass.plugin.GreengrassMqttCollector`
(gateway, push: subscribes to ``$aws/things/+/greengrassv2/health/json`` and the emitter's
topic; ``collect()`` drains what arrived) and ``greengrass_cloud`` =
:class:`collectors.greengrass.plugin.GreengrassCloudCollector` (central: ListCoreDevices,
GetCoreDevice, ListInstalledComponents, ListEffectiveDeployments with paginators and bounded
exponential back-off on throttling; the boto3 client is a constructor argument).

Pure functions over decoded JSON, in :mod:`collectors.greengrass.parse`:

``parse_fleet_status(obj, *, device=None, site="default", source="", timestamp_ms=None)``
    One FSS message -> ``device_healthy``, ``component_state`` (one series per state),
    ``component_count`` (COMPLETE messages only) and ``deployment_status``.
``parse_emitter(obj, *, device, site="default", source="", timestamp_ms=None)``
    One NucleusEmitter publish (a JSON array) -> cpu, memory, file descriptors, components per
    state.
``parse_message(obj, ...)``
    Either of the two, told apart by shape (array = emitter).
``parse_core_device(response, *, site, timestamp_ms)``, ``parse_installed_components(items,
*, device, site, timestamp_ms)``, ``parse_effective_deployments(items, *, device, site,
timestamp_ms)``
    boto3 responses (or their item lists) of the cloud API.

:class:`collectors.greengrass.fss.FleetStatusAssembler` reassembles messages split into chunks.
All return a :class:`fleetwatch.plugins.CollectResult`; bad fields become errors, never raise.
"""
