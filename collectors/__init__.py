"""Collector plugins, one subpackage per telemetry source."""
