"""Google Coral Edge TPU: temperature and thermal throttling of PCIe/M.2 modules.

Entry point ``coral`` = :class:`collectors.coral.plugin.CoralCollector`, configured by
:class:`collectors.coral.config.CoralConfig` (``sysfs_root``, default ``/sys``).

Pure function: ``collectors.coral.parse.read_apex(sysfs_root, *, device, site="default",
timestamp_ms=None) -> CollectResult`` reads every ``class/apex/apex_N/`` (``temp``,
``trip_point{0,1,2}_temp``, ``hw_temp_warn{1,2}`` with ``_en``, ``temp_poll_interval``) and gives
``temperature_celsius``, ``thermal_trip_point_celsius``, ``coral_tpu_clock_hertz`` (derived:
500/250/125/62.5 MHz by the number of trip points reached) and ``thermal_headroom_celsius`` (to
the next threshold not yet reached). A vanished or garbled file is one error; the rest is kept.

The Coral USB Accelerator exposes no thermal interface (no sysfs, no public API): this collector
reports nothing for it rather than inventing values.
"""
