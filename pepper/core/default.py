"""The process-wide default runtime: the one components built without a ``runtime`` attach to.

It is created from configuration on first use, or by ``pepper.init()``; ``pepper.connect(default=True)``
sets it. It is the only module-level runtime pepper keeps.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pepper.core.runtime import Runtime

_default: Runtime | None = None
_default_lock = threading.RLock()


def default_runtime() -> Runtime:
    """The runtime argument-less components attach to (created from configuration on first use)."""
    from pepper.core.runtime import Runtime  # pepper.core.runtime re-exports this module's functions

    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Runtime()
        return _default


def init(db: str | None = None, resources: Any = None, **settings: Any) -> Runtime:
    """Configure the default runtime and return it.

    Replaces (and closes) a previous default runtime; agents registered on it
    are registered on the new one.
    """
    from pepper.core.runtime import Runtime  # pepper.core.runtime re-exports this module's functions

    global _default
    with _default_lock:
        new = Runtime(db=db, resources=resources, **settings)
        old, _default = _default, new
        if old is not None and not old.closed:
            agents = old.agents()
            old.close()
            for agent in agents:
                new.register_agent(agent)
        return new


def set_default_runtime(runtime: Runtime) -> Runtime:
    """Make ``runtime`` (e.g. one ``pepper.connect`` returned) the default runtime; a previous default is closed."""
    global _default
    with _default_lock:
        old, _default = _default, runtime
        if old is not None and old is not runtime and not old.closed:
            old.close()
        return runtime


def reset_default_runtime() -> None:
    """Close and forget the default runtime and its agents (for tests)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = None


def resolve(runtime: Runtime | None) -> Runtime:
    """``runtime`` or, if None, the default runtime."""
    return runtime if runtime is not None else default_runtime()
