"""Baseline model plugins (one module per family), registered on import."""
