"""``Component``: what every public face (orchestrator, monitors, selectors...) shares: its runtime."""

from __future__ import annotations

from pepper.core.default import resolve
from pepper.core.runtime import Runtime
from pepper.engine.portal import Portal


class Component:
    """Bound to ``runtime``, or (``None``) to the default runtime, looked up at each use."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime

    @property
    def runtime(self) -> Runtime:
        return resolve(self._runtime)

    def _portal(self) -> Portal:
        """The engine thread the component's blocking calls hop onto."""
        return self.runtime.portal()
