"""The seed's public faces, each a thin view over one ``Runtime``."""

from pepper.core.default import default_runtime, init
from pepper.core.distribution import AgentSelector, LoadBalancer
from pepper.core.health import HealthMonitor
from pepper.core.orchestrator import TaskOrchestrator
from pepper.core.performance import PerformanceMonitor
from pepper.core.recovery import ErrorHandler
from pepper.core.registration import agent, load_agents, register_agent
from pepper.core.resources import ResourceAllocator, ResourceManager, ResourceMonitor
from pepper.core.runtime import Runtime
from pepper.core.workflow import TaskSequencer, WorkflowController, load_workflow

__all__ = [
    "AgentSelector",
    "ErrorHandler",
    "HealthMonitor",
    "LoadBalancer",
    "PerformanceMonitor",
    "ResourceAllocator",
    "ResourceManager",
    "ResourceMonitor",
    "Runtime",
    "TaskOrchestrator",
    "TaskSequencer",
    "WorkflowController",
    "agent",
    "default_runtime",
    "init",
    "load_agents",
    "load_workflow",
    "register_agent",
]
