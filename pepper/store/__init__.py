"""pepper.store."""
