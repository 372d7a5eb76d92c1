"""tegrastats lines of a simulated Jetson, JetPack 5 and 6 forms (FORMATS.md §4.2).

JetPack 5 prints every zone with upper-case names and ``-256C`` for a powered-off one; JetPack 6
prints lower-case names and leaves offline zones out. Rails print ``cur/avg`` in mW, the average
running since the first line this simulator printed for the device.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from fleetwatch.simulate.physics import SENSOR_INDEX, sensor_types
from fleetwatch.simulate.series import MiB, gpu_ratio, rail_milliamps

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

CPU_MAX_MHZ = {
    "jetson-agx-orin": 2201,
    "jetson-orin-nx": 1984,
    "jetson-orin-nano": 1510,
    "jetson-xavier-nx": 1420,
}
# Zone order in the JetPack 5 AGX Orin line of the fixture.
JP5_ORIN_ORDER = ("cv0", "cpu", "soc2", "soc0", "cv1", "gpu", "tj", "soc1", "cv2")
JP6_ORIN_ORDER = ("cpu", "soc2", "soc0", "gpu", "tj", "soc1", "cv0", "cv1", "cv2")
XAVIER_ORDER = ("aux", "cpu", "ao", "gpu")


def core_loads(sim: Simulator, i: int) -> list[int]:
    """Per-core load in whole percent; cores differ but average to the device's load."""
    cores = sim.devices[i].profile.cores
    weights = 1.0 + 0.35 * np.sin(np.arange(cores) * 1.7 + i)
    weights /= weights.mean()
    return [int(v) for v in np.clip(np.round(sim.state.cpu[i] * 100.0 * weights), 0, 100)]


def _temp(mc: int) -> str:
    return f"{mc / 1000:g}C"


def _temps(sim: Simulator, i: int) -> list[str]:
    dev = sim.devices[i]
    known = {name for name, _ in sensor_types(dev)}
    order: tuple[str, ...]
    if dev.hardware_model == "jetson-xavier-nx":
        order, upper, keep_offline = XAVIER_ORDER, True, True
    elif dev.jetpack == 6:
        order, upper, keep_offline = JP6_ORIN_ORDER, False, False
    else:
        order, upper, keep_offline = JP5_ORIN_ORDER, True, True
    out = []
    for name in order:
        if name not in known:
            continue
        col = SENSOR_INDEX[name]
        if not sim.state.sensor_online[i, col] and not keep_offline:
            continue
        label = name.upper() if upper and name != "tj" else name
        out.append(f"{label}@{_temp(int(sim.state.sensor_mc[i, col]))}")
    return out


def rail_milliwatts(sim: Simulator, i: int) -> dict[str, int]:
    idx = np.array([i])
    return {
        r.name: int(r.millivolts * rail_milliamps(sim, idx, r)[0] // 1000)
        for r in sim.devices[i].profile.rails
    }


def tegrastats_line(sim: Simulator, i: int, averages: dict[str, list[float]] | None = None) -> str:
    """One tegrastats line for device index ``i`` at the simulator's current time.

    ``averages`` holds running (sum, count) per rail between calls; pass the same dict each time.
    """
    dev, st = sim.devices[i], sim.state
    prof = dev.profile
    stamp = datetime.fromtimestamp(sim.t, tz=UTC).strftime("%m-%d-%Y %H:%M:%S")
    used = int(st.memory_used[i] // MiB)
    total = int(sim.params.memory_bytes[i] // MiB)
    loads = core_loads(sim, i)
    mhz = CPU_MAX_MHZ[dev.hardware_model]
    cpu = ",".join(f"{v}%@{mhz if v >= 5 else 729}" for v in loads)
    gpu = round(float(gpu_ratio(sim, np.array([i]))[0]) * 100)
    freqs = ",".join([str(prof.gpu_max_mhz if gpu > 0 else 0)] * prof.gpcs)
    parts = [
        stamp,
        f"RAM {used}/{total}MB (lfb {max(4, (total - used) // 16)}x4MB)",
        f"SWAP 0/{total // 2}MB (cached 0MB)",
        f"CPU [{cpu}]",
        f"EMC_FREQ {int(st.cpu[i] * 30)}%@3199",
        f"GR3D_FREQ {gpu}%@[{freqs}]",
    ]
    if dev.jetpack == 6:
        parts.append("NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 174")
    else:
        parts.append("VIC_FREQ 729 APE 174")
    parts.extend(_temps(sim, i))
    averages = {} if averages is None else averages
    for j, (name, mw) in enumerate(rail_milliwatts(sim, i).items()):
        acc = averages.setdefault(f"{i}/{name}", [0.0, 0.0])
        acc[0] += mw
        acc[1] += 1
        parts.append(f"{name} {mw}mW/{int(acc[0] / acc[1])}mW")
        if dev.jetpack == 5 and prof.nc_channels and j == 2:
            parts.append("NC 0mW/0mW")
    if dev.jetpack == 5 and prof.nc_channels:
        parts.append("NC 0mW/0mW")
    return " ".join(parts)
