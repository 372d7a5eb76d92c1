"""Hardware profiles of the simulated fleet: what each module has and how it behaves thermally.

Numbers are plausible, not vendor specifications: they are chosen so that a healthy device runs
between 45 and 70 °C at its usual load and a device without airflow heads for its trip point.
Sensor ``type`` strings, rail names and sysfs locations follow tests/fixtures/FORMATS.md (§3, §4).
"""

from __future__ import annotations

from dataclasses import dataclass

# Jetson thermal zones: the sysfs ``type`` string per JetPack, and the offset from the die
# temperature per unit of CPU and GPU load (hot spots sit above the die mean).
ORIN_SENSORS_JP6 = (
    ("cpu", "cpu-thermal"),
    ("gpu", "gpu-thermal"),
    ("cv0", "cv0-thermal"),
    ("cv1", "cv1-thermal"),
    ("cv2", "cv2-thermal"),
    ("soc0", "soc0-thermal"),
    ("soc1", "soc1-thermal"),
    ("soc2", "soc2-thermal"),
    ("tj", "tj-thermal"),
)
ORIN_SENSORS_JP5 = (
    *((name, f"{name.upper()}-therm") for name, _ in ORIN_SENSORS_JP6[:-1]),
    ("tj", "tj-therm"),
)
XAVIER_SENSORS_JP5 = (
    ("ao", "AO-therm"),
    ("aux", "AUX-therm"),
    ("cpu", "CPU-therm"),
    ("gpu", "GPU-therm"),
)

# Offsets of each canonical sensor from the die temperature: (constant, per cpu load, per gpu load).
SENSOR_OFFSETS: dict[str, tuple[float, float, float]] = {
    "cpu": (0.0, 3.0, 0.5),
    "gpu": (-0.8, 0.5, 3.5),
    "cv0": (-1.0, 0.0, 0.0),
    "cv1": (-1.0, 0.0, 0.0),
    "cv2": (-1.0, 0.0, 0.0),
    "soc0": (-1.5, 1.0, 1.0),
    "soc1": (-2.0, 1.0, 1.0),
    "soc2": (-2.3, 1.0, 1.0),
    "ao": (-4.0, 0.5, 0.5),
    "aux": (-3.0, 1.0, 1.0),
}
# Power-gated engines whose sensor reads -256 °C (the CV/DLA cluster is idle in this fleet).
GATED_SENSORS = frozenset({"cv0", "cv1", "cv2"})

# nvfancontrol-like curve: temperature of the hottest zone (°C) -> pwm (0..255).
FAN_CURVE_C = (35.0, 45.0, 55.0, 65.0, 75.0)
FAN_CURVE_PWM = (0.0, 64.0, 128.0, 192.0, 255.0)

CORAL_TRIP_POINTS_MILLIC = (84800, 89800, 94800)  # 85/90/95 °C as the apex driver reads them back
CORAL_SHUTDOWN_MILLIC = 99800  # hw_temp_warn2 (SD_ALARM), enabled by the driver
CORAL_CLOCKS_HZ = (500e6, 250e6, 125e6, 62.5e6)


@dataclass(frozen=True, slots=True)
class Rail:
    """One INA3221 channel: sysfs node, channel, label, and its share of the device's power."""

    name: str
    node: str  # i2c "<bus>-<addr>"
    channel: int
    base_w: float
    cpu_w: float  # watts at 100 % CPU
    gpu_w: float  # watts at 100 % GPU
    millivolts: int


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """Everything the simulator needs to know about one hardware model."""

    model: str
    kind: str  # "jetson" or "coral_gateway"
    accelerator: str
    cores: int
    memory_bytes: int
    disks: tuple[tuple[str, int], ...]  # (block device name, size bytes)
    idle_w: float
    cpu_w: float
    gpu_w: float
    r_passive: float  # °C/W, heatsink without airflow
    fan_gain: float  # R = r_passive / (1 + fan_gain * airflow)
    tau_s: float  # thermal time constant of the die + heatsink
    fan_max_rpm: float
    throttle_sensor: str
    trip_points: tuple[tuple[int, str], ...]  # (millidegrees, type) for the throttle sensor
    rails: tuple[Rail, ...]
    nc_channels: tuple[tuple[str, int], ...] = ()  # unused INA3221 channels, label "NC"
    gpcs: int = 1  # GR3D frequencies per line in tegrastats
    apex_count: int = 0
    gpu_max_mhz: int = 0


def _orin_agx_rails() -> tuple[Rail, ...]:
    return (
        Rail("VDD_GPU_SOC", "1-0040", 1, 2.2, 0.0, 28.0, 4968),
        Rail("VDD_CPU_CV", "1-0040", 2, 0.7, 12.0, 0.0, 4976),
        Rail("VIN_SYS_5V0", "1-0040", 3, 3.4, 1.5, 2.5, 4992),
        Rail("VDDQ_VDD2_1V8AO", "1-0041", 2, 0.3, 0.8, 1.0, 4984),
    )


def _small_module_rails(idle: float, cpu: float, gpu: float) -> tuple[Rail, ...]:
    # VDD_IN is the whole module's input; the other two are parts of it.
    return (
        Rail("VDD_IN", "1-0040", 1, idle, cpu, gpu, 5032),
        Rail("VDD_CPU_GPU_CV", "1-0040", 2, idle * 0.12, cpu * 0.8, gpu * 0.85, 5024),
        Rail("VDD_SOC", "1-0040", 3, idle * 0.3, cpu * 0.1, gpu * 0.1, 5024),
    )


GiB = 1 << 30

PROFILES: dict[str, HardwareProfile] = {
    p.model: p
    for p in (
        HardwareProfile(
            model="jetson-agx-orin",
            kind="jetson",
            accelerator="ampere-gpu",
            cores=12,
            memory_bytes=30536 * 1024 * 1024,
            disks=(("mmcblk0p1", 61538615296), ("nvme0n1p1", 491180957696)),
            idle_w=6.6,
            cpu_w=14.3,
            gpu_w=31.5,
            r_passive=3.8,
            fan_gain=4.0,
            tau_s=300.0,
            fan_max_rpm=5000.0,
            throttle_sensor="tj",
            trip_points=((99000, "passive"), (104500, "critical")),
            rails=_orin_agx_rails(),
            nc_channels=(("1-0041", 1), ("1-0041", 3)),
            gpcs=2,
            gpu_max_mhz=1300,
        ),
        HardwareProfile(
            model="jetson-orin-nx",
            kind="jetson",
            accelerator="ampere-gpu",
            cores=8,
            memory_bytes=15388 * 1024 * 1024,
            disks=(("nvme0n1p1", 127865454592),),
            idle_w=5.0,
            cpu_w=8.0,
            gpu_w=12.0,
            r_passive=7.5,
            fan_gain=4.0,
            tau_s=220.0,
            fan_max_rpm=5500.0,
            throttle_sensor="tj",
            trip_points=((99000, "passive"), (104500, "critical")),
            rails=_small_module_rails(5.0, 8.0, 12.0),
            gpu_max_mhz=918,
        ),
        HardwareProfile(
            model="jetson-orin-nano",
            kind="jetson",
            accelerator="ampere-gpu",
            cores=6,
            memory_bytes=7620 * 1024 * 1024,
            disks=(("mmcblk0p1", 61538615296),),
            idle_w=4.2,
            cpu_w=4.5,
            gpu_w=6.5,
            r_passive=10.5,
            fan_gain=4.0,
            tau_s=180.0,
            fan_max_rpm=6000.0,
            throttle_sensor="tj",
            trip_points=((99000, "passive"), (104500, "critical")),
            rails=_small_module_rails(4.2, 4.5, 6.5),
            gpu_max_mhz=624,
        ),
        HardwareProfile(
            model="jetson-xavier-nx",
            kind="jetson",
            accelerator="volta-gpu",
            cores=6,
            memory_bytes=6854 * 1024 * 1024,
            disks=(("mmcblk0p1", 15758000128),),
            idle_w=4.6,
            cpu_w=5.5,
            gpu_w=7.0,
            r_passive=9.0,
            fan_gain=4.0,
            tau_s=200.0,
            fan_max_rpm=5200.0,
            throttle_sensor="cpu",
            trip_points=((97000, "passive"), (101000, "critical")),
            rails=_small_module_rails(4.6, 5.5, 7.0),
            gpu_max_mhz=510,
        ),
        HardwareProfile(
            model="gateway-coral-pcie",
            kind="coral_gateway",
            accelerator="coral-pcie",
            cores=4,
            memory_bytes=8 * GiB,
            disks=(("sda1", 256060514304),),
            idle_w=9.0,
            cpu_w=16.0,
            gpu_w=0.0,
            r_passive=1.3,  # enclosure air above ambient, per host watt
            fan_gain=0.0,
            tau_s=600.0,
            fan_max_rpm=0.0,
            throttle_sensor="apex_0",
            trip_points=(),
            rails=(),
            apex_count=2,
        ),
        HardwareProfile(
            model="gateway-coral-m2",
            kind="coral_gateway",
            accelerator="coral-m2",
            cores=4,
            memory_bytes=4 * GiB,
            disks=(("mmcblk0p2", 31268536320),),
            idle_w=4.0,
            cpu_w=7.0,
            gpu_w=0.0,
            r_passive=2.2,
            fan_gain=0.0,
            tau_s=500.0,
            fan_max_rpm=0.0,
            throttle_sensor="apex_0",
            trip_points=(),
            rails=(),
            apex_count=1,
        ),
    )
}

# Edge TPU module: die above enclosure air, per watt; idle and full-clock dynamic power.
APEX_R_C_PER_W = 10.0
APEX_IDLE_W = 0.5
APEX_DYNAMIC_W = 1.9
APEX_TAU_S = 90.0

# Share of the fleet per model (the rest of the mix is drawn from the seed).
MODEL_WEIGHTS: dict[str, float] = {
    "jetson-agx-orin": 0.15,
    "jetson-orin-nx": 0.20,
    "jetson-orin-nano": 0.15,
    "jetson-xavier-nx": 0.10,
    "gateway-coral-pcie": 0.18,
    "gateway-coral-m2": 0.22,
}

JETPACK_FIRMWARE = {5: "jetpack-5.1.2", 6: "jetpack-6.1"}
GATEWAY_FIRMWARE = ("ubuntu-22.04-apex-1.2", "debian-12-apex-1.2")
