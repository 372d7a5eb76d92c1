"""Notifier plugins shipped with fleetwatch (declared as ``fleetwatch.notifiers`` entry points)."""
