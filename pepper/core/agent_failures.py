"""Agents left out as an engine started: their start-up (``initialize()``) failed, so they are not registered
while the other agents run. The runtime keeps what went wrong for ``failed_agents()``, the health check, and the
one ``AgentStartError`` an explicit ``start()`` raises."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pepper.agents.base import BaseAgent
from pepper.errors import AgentStartError, PepperError, StoreError

if TYPE_CHECKING:
    from pepper.engine.service import EngineService

log = logging.getLogger("pepper")

#: The attribute naming the agent on the log record of an agent left out (a command line that tells it in a
#: line of its own drops the record, traceback and all).
AGENT_LEFT_OUT = "pepper_agent_left_out"


def described(error: BaseException) -> str:
    """``Type: message`` of an agent's failure (the message alone for pepper's own errors)."""
    return str(error) if isinstance(error, PepperError) else f"{type(error).__name__}: {error}"


class AgentFailures:
    """Agent id -> what went wrong, for the agents left out; and those no ``start()`` has raised yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}
        self._untold: dict[str, str] = {}

    def left_out(self, agent_id: str, error: BaseException) -> None:
        """``agent_id`` failed to join the engine: its error is kept, and logged with its traceback."""
        why = described(error)
        log.error("agent %r could not start and is left out (the other agents run): %s", agent_id, why,
                  exc_info=error, extra={AGENT_LEFT_OUT: agent_id})  # fmt: skip
        with self._lock:
            self._failed[agent_id] = self._untold[agent_id] = why

    def forget(self, agent_id: str) -> None:
        """The agent is registered again."""
        with self._lock:
            self._failed.pop(agent_id, None)
            self._untold.pop(agent_id, None)

    def all(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failed)

    def untold(self) -> dict[str, str]:
        """The failures not told yet (to a ``start()``), from now on told."""
        with self._lock:
            untold, self._untold = self._untold, {}
            return untold


async def join_all(
    service: EngineService, agents: Iterable[BaseAgent], failures: AgentFailures, added: list[BaseAgent]
) -> list[BaseAgent]:
    """Add ``agents`` to a starting engine (into ``added`` as they join); those whose joining fails are kept in
    ``failures`` and returned, to be left out."""
    left_out = []
    for agent in agents:
        try:
            await service.add_agent(agent)
        except StoreError:  # the database's trouble, not the agent's: the start fails
            raise
        except Exception as exc:  # noqa: BLE001 - logged and kept; a cancellation still stops the whole start
            failures.left_out(agent.spec.agent_id, exc)
            left_out.append(agent)
        else:
            added.append(agent)
    return left_out


async def join(service: EngineService, agent: BaseAgent) -> None:
    """Add ``agent`` to a running engine; a failure of its own start-up is an ``AgentStartError``."""
    try:
        await service.add_agent(agent)
    except PepperError:
        raise
    except Exception as exc:
        raise AgentStartError({agent.spec.agent_id: described(exc)}) from exc
