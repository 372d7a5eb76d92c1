"""The ``fleetwatch`` command line."""

from fleetwatch.cli.main import app, main

__all__ = ["app", "main"]
