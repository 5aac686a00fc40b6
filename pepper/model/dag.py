"""Dependency-graph checks: finding (and naming) a cycle, and topological order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pepper.errors import CycleError

DepsOf = Callable[[str], Iterable[str]]


def find_cycle(roots: Iterable[str], deps_of: DepsOf) -> list[str] | None:
    """A cycle reachable from ``roots`` as ``[a, b, ..., a]``, or ``None``.

    ``deps_of(node)`` gives a node's dependencies (empty for unknown nodes).
    Iterative depth-first search, so deep chains do not hit the recursion limit.
    """
    done: set[str] = set()
    for root in roots:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root: 0}
        stack = [iter(deps_of(root))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                node = path.pop()
                del on_path[node]
                done.add(node)
                continue
            if child in on_path:
                return [*path[on_path[child] :], child]
            if child in done:
                continue
            on_path[child] = len(path)
            path.append(child)
            stack.append(iter(deps_of(child)))
    return None


def check_acyclic(roots: Iterable[str], deps_of: DepsOf) -> None:
    """Raise ``CycleError`` naming the loop if one is reachable from ``roots``."""
    cycle = find_cycle(roots, deps_of)
    if cycle is not None:
        raise CycleError(cycle)


def topological_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes of ``graph`` (node -> its dependencies) with every dependency first.

    Ties keep the mapping's order, so the result is deterministic. Dependencies
    outside ``graph`` are ignored. Raises ``CycleError`` on a loop.
    """
    deps = {node: [d for d in graph[node] if d in graph] for node in graph}
    check_acyclic(deps, lambda n: deps.get(n, ()))
    order: list[str] = []
    placed: set[str] = set()
    for node in deps:
        stack = [(node, iter(deps[node]))]
        if node in placed:
            continue
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if current not in placed:
                    placed.add(current)
                    order.append(current)
            elif child not in placed:
                stack.append((child, iter(deps[child])))
    return order
