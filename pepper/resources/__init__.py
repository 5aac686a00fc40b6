"""pepper.resources."""
