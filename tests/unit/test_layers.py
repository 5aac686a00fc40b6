"""The faces (``pepper.core``, ``pepper.cli``) never touch the engine's internals.

Engine state is read and written only on the engine's thread, by the engine: the faces ask
through the ``Backend`` protocol (``Runtime.backend`` and ``Runtime.read``). The
import contract in ``pyproject.toml`` keeps them from importing the engine's internal modules;
this test keeps them from reaching those internals through attributes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pepper

ROOT = Path(pepper.__file__).parent
FACES = [ROOT / "core", ROOT / "cli"]

#: Attributes that are the engine's own: the runtime's engine handle, the engine behind the service,
#: its live state and caches, its pending batch, waiters and agent handles.
INTERNALS = frozenset({"_service", "engine", "batch", "waiters", "handles", "routing", "upkeep"})
#: Where the runtime keeps its own handle: ``self._service`` inside ``Runtime`` only.
OWNER = ROOT / "core" / "runtime.py"


def _touches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or node.attr not in INTERNALS:
            continue
        if node.attr == "engine" and id(node) in called:
            continue  # ``runtime.engine()``: the runtime's own method, which answers the service
        own = isinstance(node.value, ast.Name) and node.value.id == "self"
        if node.attr == "_service" and path == OWNER and own:
            continue
        found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_the_faces_reach_no_engine_internals():
    # Given every module of the faces
    modules = sorted(p for folder in FACES for p in folder.rglob("*.py"))
    assert modules
    # When their attribute accesses are read
    found = [hit for path in modules for hit in _touches(path)]
    # Then none names an engine internal
    assert found == [], "engine internals touched outside pepper/engine:\n" + "\n".join(found)


def test_the_check_sees_a_reach_into_the_engine(tmp_path):
    # Given a module that reads the engine's state through the runtime
    bad = tmp_path / "bad.py"
    bad.write_text("def f(runtime):\n    return runtime._service.engine.state.tasks\n")
    # Then the check names both steps
    assert sorted(hit.rsplit(": ", 1)[1] for hit in _touches(bad)) == ["._service", ".engine"]
