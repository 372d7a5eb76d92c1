"""fleetwatch: fleet observability and predictive maintenance for edge AI devices."""

__version__ = "0.1.0"
