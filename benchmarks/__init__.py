"""Benchmarks run by `fleetwatch bench NAME`; each prints one JSON object as its last line."""
