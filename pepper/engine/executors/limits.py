"""How large an attempt's result may be, and the error past it.

A result is stored in the database and kept in memory with its task, so an
agent that returns (or a command that prints) hundreds of megabytes by
mistake would bloat both. Results are capped at ``DEFAULT_RESULT_MB`` (10 MB)
of JSON or stdout; an agent raises its own cap with ``max_result_mb`` in its
config (``CommandAgent(..., max_result_mb=50)``, or ``config: {max_result_mb:
50}`` in YAML).
"""

from __future__ import annotations

import math
from typing import Any

from pepper.model.agent import AgentSpec

DEFAULT_RESULT_MB = 10.0
#: The agent config key that raises (or lowers) the cap.
RESULT_MB_KEY = "max_result_mb"
_MB = 1024 * 1024


class ResultTooLarge(Exception):
    """The attempt's result (a command's stdout, or a function's result as JSON) is larger than its cap."""

    def __init__(self, agent_id: str, limit_mb: float, what: str) -> None:
        super().__init__(
            f"{what} is larger than {limit_mb:g} MB, the result size limit of agent {agent_id!r}; return less "
            f"(write big data to a file and return its path), or raise the limit with the agent's config "
            f"{RESULT_MB_KEY!r} (e.g. {RESULT_MB_KEY}: {max(2 * limit_mb, 1):g})"
        )
        self.agent_id = agent_id
        self.limit_mb = limit_mb


def result_limit_mb(spec: AgentSpec) -> float:
    """The agent's result cap in MB: its config's ``max_result_mb`` when valid, else the default."""
    value: Any = spec.config.get(RESULT_MB_KEY)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        return DEFAULT_RESULT_MB
    return float(value)


def result_limit(spec: AgentSpec) -> int:
    """The agent's result cap in bytes."""
    return int(result_limit_mb(spec) * _MB)


def check_result_size(spec: AgentSpec, result_json: str | None, limit: int | None = None) -> None:
    """Raise ``ResultTooLarge`` when the encoded result is over the agent's cap (``limit``: that cap, in bytes, as
    ``result_limit`` gave it for ``spec``)."""
    if result_json is None:
        return
    if limit is None:
        limit = result_limit(spec)
    # A character is 1 to 4 bytes in UTF-8; encode only when the character count alone cannot decide.
    size = len(result_json)
    if size * 4 > limit and size <= limit:
        size = len(result_json.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ResultTooLarge(spec.agent_id, result_limit_mb(spec), "the agent's result (as JSON)")
