"""The runtime itself: a server out of reach, a call a remote runtime cannot make, a closed runtime, a wrong thread."""

from __future__ import annotations

from collections.abc import Mapping

from pepper.errors.base import PepperError, shown


class ServerUnreachableError(PepperError, ConnectionError):
    """A pepper server (``pepper.connect``, ``--server``) that could not be reached; ``url`` names it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the pepper server at {url}: {reason}. Is `pepper serve` running there, and is the "
            "URL right (scheme, host, port)?"
        )
        self.url = url


class RemoteUnsupportedError(PepperError, NotImplementedError):
    """A call a runtime connected to a server cannot make: it needs the database or an engine in this process."""

    def __init__(self, what: str, instead: str) -> None:
        super().__init__(f"{what} is not offered by a remote pepper server; {instead}")


class RuntimeClosedError(PepperError, RuntimeError):
    """The runtime was closed; create a new one (or call ``pepper.init``)."""


class BlockingCallError(PepperError, RuntimeError):
    """A blocking call was made from the engine's own thread, where it would deadlock."""


class ExecutorUnavailableError(PepperError, RuntimeError):
    """An agent's attempts cannot run where it says they run: Ray cannot be imported here, a ``ray://`` address
    without Ray's client package, or a budget no node of the Ray cluster has. The message says what to change."""


class AgentStartError(PepperError, RuntimeError):
    """Agents whose start-up failed (``initialize()`` raised): they are not registered, the others run.
    ``failures``: agent id -> what went wrong (the error's type and message)."""

    def __init__(self, failures: Mapping[str, str], message: str | None = None) -> None:
        self.failures = dict(failures)
        told = "; ".join(f"{shown(agent_id)}: {why}" for agent_id, why in self.failures.items())
        one = len(self.failures) == 1
        super().__init__(
            message
            or f"{'an agent' if one else f'{len(self.failures)} agents'} could not start and "
            f"{'is' if one else 'are'} not registered ({told}); the other agents run. Fix the cause and "
            "register it again"
        )
