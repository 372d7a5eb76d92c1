"""The simulator's telemetry in the real formats of each source (see tests/fixtures/FORMATS.md)."""
