"""pepper.monitoring."""
