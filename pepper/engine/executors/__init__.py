"""pepper.engine.executors."""
