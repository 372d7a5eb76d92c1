"""Helpers shared by benchmarks: machine description and the JSON last line."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any


def machine() -> dict[str, Any]:
    mem_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_bytes / 2**30, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
    }


def emit(result: dict[str, Any]) -> dict[str, Any]:
    """Print the benchmark's JSON object as the last line of output, with the machine."""
    result = {**result, "machine": machine()}
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=False))
    return result
