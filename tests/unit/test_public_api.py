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


def test_the_runtime_module_offers_the_default_runtime_functions_it_always_did():
    from pepper.core import default, runtime

    # Given the functions of the default runtime, at home in pepper.core.default
    names = ["default_runtime", "init", "reset_default_runtime", "resolve", "set_default_runtime"]
    # Then pepper.core.runtime offers the very same functions, beside the Runtime
    assert runtime.__all__ == sorted(["Runtime", *names])
    for name in names:
        assert getattr(runtime, name) is getattr(default, name), name
    assert pepper.core.default_runtime is default.default_runtime and pepper.core.init is default.init


def test_the_default_runtime_module_works_imported_first(tmp_path):
    import subprocess
    import sys

    # Given a fresh interpreter that imports only pepper.core.default
    probe = (
        "from pepper.core import default\n"
        "first = default.init(db=':memory:')\n"
        "assert default.resolve(None) is first is default.default_runtime()\n"
        "default.reset_default_runtime()\n"
        "assert first.closed and default.default_runtime() is not first\n"
        "default.reset_default_runtime()\n"
        "print(type(first).__module__)\n"
    )
    # When it sets up, reads and resets the default runtime
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    # Then each step holds and the runtime is the one pepper.core.runtime defines
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pepper.core.runtime"]
