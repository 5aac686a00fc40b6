"""pepper.engine."""
