"""Agents: the lifecycle base class, function agents, command agents, YAML loading.

Implementation, not public API (``BaseAgent`` is exported by ``pepper``); names here may change
without notice.
"""

from pepper.agents.base import BaseAgent
from pepper.agents.command import CommandAgent
from pepper.agents.function import FunctionAgent
from pepper.agents.loader import read_agents

__all__ = [
    "BaseAgent",
    "CommandAgent",
    "FunctionAgent",
    "read_agents",
]
