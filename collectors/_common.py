"""Small helpers shared by the collector packages (no fleetwatch imports beyond plugins)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field

from fleetwatch.plugins import CollectError

DEFAULT_SITE = "default"

DeviceField = Field(
    None,
    description="device label of every sample; default: the source's own id "
    "(IoT Edge edge_device, Greengrass thing name) or, for sysfs and tegrastats, the host name",
)
SiteField = Field(DEFAULT_SITE, min_length=1, description="site label of every sample")


def host_device() -> str:
    """The device label of a device-local source when none is configured."""
    return socket.gethostname() or "localhost"


def read_text(path: Path, errors: list[CollectError]) -> str | None:
    """A whole text file, or None with one error naming the file and the reason."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        errors.append(CollectError(str(path), f"cannot read: {exc.strerror or exc}"))
        return None
