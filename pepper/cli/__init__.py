"""pepper.cli."""
