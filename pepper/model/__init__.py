"""pepper.model."""
