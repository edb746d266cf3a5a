"""The project package has no models of its own (Job moved to core, the legacy import to legacy)."""
