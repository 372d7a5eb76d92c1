"""The simulated fleet's inventory: sites and devices, drawn deterministically from a seed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from fleetwatch.simulate.hardware import (
    GATEWAY_FIRMWARE,
    JETPACK_FIRMWARE,
    MODEL_WEIGHTS,
    PROFILES,
    HardwareProfile,
)

# (name, UTC offset in hours, mean ambient °C, diurnal half-swing °C, time zone)
SITE_TEMPLATES = (
    ("fra-plant", 1.0, 23.0, 3.0, "Europe/Berlin"),
    ("phx-depot", -7.0, 29.0, 5.0, "America/Phoenix"),
    ("sgp-port", 8.0, 30.0, 2.0, "Asia/Singapore"),
    ("sea-yard", -8.0, 18.0, 4.0, "America/Los_Angeles"),
    ("blr-lab", 5.5, 26.0, 4.0, "Asia/Kolkata"),
    ("sao-dc", -3.0, 25.0, 3.0, "America/Sao_Paulo"),
)
RUNTIMES = ("iotedge", "greengrass")
RUNTIME_VERSIONS = {"iotedge": "1.4.27", "greengrass": "2.14.3"}
_MODEL_PREFIX = {
    "jetson-agx-orin": "orin-agx",
    "jetson-orin-nx": "orin-nx",
    "jetson-orin-nano": "orin-nano",
    "jetson-xavier-nx": "xavier-nx",
    "gateway-coral-pcie": "gw-coral",
    "gateway-coral-m2": "gw-m2",
}


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    utc_offset_h: float
    ambient_c: float
    ambient_swing_c: float
    timezone: str


@dataclass(frozen=True, slots=True)
class Device:
    """One simulated device as the state DB would register it."""

    id: str
    site: str
    hardware_model: str
    accelerator: str
    firmware: str
    runtime: str  # "iotedge" (Azure IoT Edge gateway) or "greengrass" (Greengrass v2 core)
    node_name: str  # the orchestrator's node name
    index: int
    jetpack: int | None = None  # 5 or 6 on Jetson modules

    @property
    def profile(self) -> HardwareProfile:
        return PROFILES[self.hardware_model]

    @property
    def cohort(self) -> tuple[str, str, str]:
        """(hardware, firmware, site): devices that should behave alike."""
        return self.hardware_model, self.firmware, self.site

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "site": self.site,
            "hardware_model": self.hardware_model,
            "accelerator": self.accelerator,
            "firmware": self.firmware,
            "runtime": self.runtime,
            "node_name": self.node_name,
        }


def build_sites(n_sites: int) -> list[Site]:
    """The first ``n_sites`` sites; past the templates, numbered copies at shifted time zones."""
    sites = []
    for i in range(n_sites):
        name, offset, ambient, swing, tz = SITE_TEMPLATES[i % len(SITE_TEMPLATES)]
        if i >= len(SITE_TEMPLATES):
            name = f"{name}-{i // len(SITE_TEMPLATES) + 1}"
        sites.append(Site(name, offset, ambient, swing, tz))
    return sites


def build_inventory(n_devices: int, sites: list[Site], rng: np.random.Generator) -> list[Device]:
    """Draw the device mix: models by weight, JetPack 5/6, runtime, round-robin sites."""
    models = list(MODEL_WEIGHTS)
    weights = np.array([MODEL_WEIGHTS[m] for m in models])
    picks = rng.choice(len(models), size=n_devices, p=weights / weights.sum())
    jetpacks = rng.choice([5, 6], size=n_devices, p=[0.4, 0.6])
    runtimes = rng.choice(len(RUNTIMES), size=n_devices)
    gw_fw = rng.choice(len(GATEWAY_FIRMWARE), size=n_devices)
    counters: dict[str, int] = {}
    devices = []
    for i in range(n_devices):
        model = models[int(picks[i])]
        profile = PROFILES[model]
        site = sites[i % len(sites)]
        counters[model] = counters.get(model, 0) + 1
        device_id = f"{_MODEL_PREFIX[model]}-{site.name.split('-')[0]}-{counters[model]:04d}"
        jetpack: int | None = None
        if profile.kind == "jetson":
            # Xavier NX stops at JetPack 5.
            jetpack = 5 if model == "jetson-xavier-nx" else int(jetpacks[i])
            firmware = JETPACK_FIRMWARE[jetpack]
        else:
            firmware = GATEWAY_FIRMWARE[int(gw_fw[i])]
        devices.append(
            Device(
                id=device_id,
                site=site.name,
                hardware_model=model,
                accelerator=profile.accelerator,
                firmware=firmware,
                runtime=RUNTIMES[int(runtimes[i])],
                node_name=f"edge-{device_id}",
                index=i,
                jetpack=jetpack,
            )
        )
    return devices


def seeded_guid(rng: np.random.Generator) -> str:
    """A GUID drawn from the simulation's random stream, so instance numbers are reproducible."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))
