"""pepper.scheduling."""
