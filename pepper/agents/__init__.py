"""Agents: the lifecycle base class, function agents, command agents, YAML loading."""

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
