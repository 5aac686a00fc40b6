"""The public surface is small, sorted and pinned: changing it is a deliberate act."""

from __future__ import annotations

import pepper
import pepper.core
from pepper import errors

TOP_LEVEL = [
    "BaseAgent",
    "PepperError",
    "Plan",
    "Priority",
    "Runtime",
    "Task",
    "TaskError",
    "TaskOrchestrator",
    "TaskRun",
    "TaskState",
    "TaskStatus",
    "WaitReason",
    "__version__",
    "agent",
    "connect",
    "default_runtime",
    "init",
    "load_agents",
    "plan",
    "register_agent",
    "schedule",
    "schedules",
]
CORE = [
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


def test_exported_names_are_pinned_and_sorted():
    assert pepper.__all__ == TOP_LEVEL == sorted(TOP_LEVEL)
    assert pepper.core.__all__ == CORE == sorted(CORE)
    for module in (pepper, pepper.core):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_every_error_descends_from_pepper_error_and_a_builtin():
    classes = [obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, Exception)]
    for cls in classes:
        assert issubclass(cls, errors.PepperError)
        if cls is not errors.PepperError:
            builtin_bases = [
                b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (object, Exception, BaseException)
            ]
            assert builtin_bases, f"{cls.__name__} should also subclass a builtin error"
    assert "ValidationError" in errors.__doc__ and "WaitTimeoutError" in errors.__doc__


def test_every_public_function_and_class_has_a_docstring():
    for module in (pepper, pepper.core):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"


def test_every_other_package_says_it_is_not_public_api():
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(pepper.__path__):
        if info.ispkg and info.name not in ("core", "errors"):  # the two public packages
            module = importlib.import_module(f"pepper.{info.name}")
            assert "not public API" in (module.__doc__ or ""), f"pepper.{info.name} does not say it is internal"
