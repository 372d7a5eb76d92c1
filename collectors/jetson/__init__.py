"""NVIDIA Jetson: sysfs (thermal zones, trip points, fan, INA3221 rails) and tegrastats.

Entry points: ``jetson`` = :class:`collectors.jetson.plugin.JetsonCollector` (``sysfs_root``)
and ``tegrastats`` = :class:`collectors.jetson.plugin.TegrastatsCollector` (runs
``tegrastats --interval N``, or tails ``logfile``, or reads ``file``).

Pure functions to call directly:

``collectors.jetson.sysfs.read_jetson(sysfs_root, *, device, site="default",
timestamp_ms=None) -> CollectResult``
    Zones under ``devices/virtual/thermal/thermal_zone*`` matched by ``type`` (sensor label:
    the type's first word, lower case), offline sensors as ``temperature_sensor_up 0``,
    ``trip_point_K_temp/_type``, headroom to the next passive/hot/critical trip, fan PWM (hwmon
    ``name`` = ``pwmfan``, ``pwm1``; JetPack 4 ``target_pwm``) and tachometer rpm, INA3221 rails
    (JetPack 5+ hwmon ``inK_label``/``inK_input``/``currK_input``, skipping ``NC`` and ``in7``;
    JetPack 4 iio ``rail_name_K``/``in_powerK_input``) as ``power_watts``.
``collectors.jetson.tegrastats.parse_line(line, *, device="", site="default",
timestamp_ms=None, tz=UTC, source="tegrastats", line_no=None) -> CollectResult``
    One tegrastats line of JetPack 4, 5 or 6 (timestamp or not, ``-256C``, ``off`` cores,
    ``GR3D_FREQ x%@[f,f]``, rails with and without ``mW``, kB/MB units).
``collectors.jetson.tegrastats.parse_lines(lines, ...)``
    Many lines, numbered for error messages.
"""
