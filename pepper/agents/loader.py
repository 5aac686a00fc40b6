"""Agents defined in YAML files.

A file holds one agent (a mapping), a list of agents, or ``agents: [...]``::

    agent_id: documentation_agent
    task_types: [documentation]
    skills: [markdown, api_docs]
    capacity: 2
    resources: {cpu: 1, memory: 512Mi}
    command: python3 "$PEPPER_AGENT_DIR/write_docs.py"
    # or  function: my_agents:write_docs   (a Python function in my_agents.py beside the file)
    # or  class: my_agents:DocAgent        (a BaseAgent subclass)

A command runs in the agent's own working directory; ``$PEPPER_AGENT_DIR`` is the
folder of the YAML file that defined it, so scripts beside it are easy to reach.

Every error names the file and line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from pepper.agents.base import BaseAgent
from pepper.agents.command import CommandAgent
from pepper.agents.function import FunctionAgent
from pepper.errors import AgentDefinitionError, PepperError, suggest
from pepper.model.agent_options import OPTION_NAMES, AgentOptions

if TYPE_CHECKING:
    import yaml

#: The most nodes a document's aliases may add (each alias counts as the nodes of what it names, copied): anchors
#: for shared settings stay far below it; a few bytes of nested aliases ("billion laughs") would reach gigabytes.
MAX_ALIAS_NODES = 100_000

#: The keys an agent's mapping may have: its id and task types, the options every agent takes, and its runner.
FIELDS = ("agent_id", "task_types", *OPTION_NAMES, "command", "function", "class", "env", "description")


class YamlMapping(dict[Any, Any]):  # keys are what the YAML wrote: strings, numbers, ...
    """A YAML mapping that remembers where it and each of its keys stand.

    A key written twice keeps its last value (as YAML loaders do); ``duplicate_keys`` maps it to the line
    of its second occurrence, for callers that want to refuse it.
    """

    line = 0
    key_lines: dict[str, int] = {}
    duplicate_keys: dict[str, int] = {}


@cache
def _loader() -> type[yaml.SafeLoader]:
    """PyYAML's safe loader making ``YamlMapping``s (yaml is loaded by those who read YAML)."""
    import yaml

    class Loader(yaml.SafeLoader):
        """Counts what aliases add while composing, and stops at ``MAX_ALIAS_NODES``."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.alias_nodes = 0
            self.node_sizes: dict[int, int] = {}
            self.open_anchors: set[str] = set()

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                anchor = cast(str, event.anchor)
                if anchor in self.open_anchors:
                    raise yaml.composer.ComposerError(
                        None, None, f"alias *{anchor} is inside its own anchor &{anchor}", event.start_mark
                    )
                if anchor in self.anchors:
                    self.alias_nodes += _node_size(self.anchors[anchor], self.node_sizes)
                    if self.alias_nodes > MAX_ALIAS_NODES:
                        raise yaml.composer.ComposerError(
                            None,
                            None,
                            f"its aliases expand it past {MAX_ALIAS_NODES:,} nodes (at alias *{anchor}); "
                            "write the values out, or use fewer nested aliases",
                            event.start_mark,
                        )
                return cast("yaml.Node", super().compose_node(parent, index))
            opened: str | None = None
            if self.check_event(yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent):
                opened = self.peek_event().anchor
            if opened is None:
                return cast("yaml.Node", super().compose_node(parent, index))
            self.open_anchors.add(opened)
            try:
                return cast("yaml.Node", super().compose_node(parent, index))
            finally:
                self.open_anchors.discard(opened)

    Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    return Loader


def _node_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with every alias in it copied out (``sizes`` remembers shared ones)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node.value, list):
        for item in node.value:
            for child in item if isinstance(item, tuple) else (item,):  # a mapping's items are (key, value)
                size += _node_size(child, sizes)
    sizes[id(node)] = size
    return size


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[YamlMapping]:
    import yaml

    data = YamlMapping()
    yield data
    written = [key for key, _ in node.value if isinstance(key, yaml.ScalarNode)]  # before merging `<<:` keys
    data.update(loader.construct_mapping(node, deep=True))
    data.line = node.start_mark.line + 1
    data.key_lines = {
        str(key.value): key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)
    }
    seen: set[str] = set()
    data.duplicate_keys = {}
    for key in written:
        if str(key.value) in seen:
            data.duplicate_keys.setdefault(str(key.value), key.start_mark.line + 1)
        seen.add(str(key.value))


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, keeping line numbers on mappings; errors carry file:line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise AgentDefinitionError(f"cannot read the file: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise AgentDefinitionError(
            f"the file is not UTF-8 text (byte {exc.start} cannot be read); save it as UTF-8", path=str(path)
        ) from None
    return parse_yaml(text, path)


def load_yaml(text: str) -> Any:
    """Parse YAML text as every YAML reader of pepper does: safe tags only, mappings keeping their line numbers,
    and aliases that would expand past ``MAX_ALIAS_NODES`` refused. Raises ``yaml.YAMLError`` (its
    ``problem_mark`` is where it went wrong) for the caller to word as its own typed error."""
    import yaml

    return yaml.load(text, Loader=_loader())


def parse_yaml(text: str, path: Path) -> Any:
    """Parse YAML text read from ``path`` (or sent under that name), keeping line numbers on mappings."""
    import yaml

    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise AgentDefinitionError(f"invalid YAML: {problem}", path=str(path), line=line) from None


def refuse_repeated_keys(data: Any, path: Path) -> None:
    """Refuse a key written twice in any mapping of ``data`` (YAML would silently keep the last), at its line."""
    pending, seen = [data], set()
    while pending:  # iterative, and each node once: YAML aliases can share (or nest) a node
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, YamlMapping):
            for key, line in node.duplicate_keys.items():
                raise AgentDefinitionError(f"{key!r} is written twice; give each key once", path=str(path), line=line)
        if isinstance(node, Mapping):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def agent_entries(data: Any, path: Path) -> list[YamlMapping]:
    """The agent mappings of a parsed file (a key written twice anywhere in it is refused)."""
    refuse_repeated_keys(data, path)
    if isinstance(data, Mapping) and "agents" in data and "agent_id" not in data:
        data = data["agents"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not data:
        raise AgentDefinitionError(
            "expected an agent (a mapping with agent_id and task_types) or a list of agents",
            path=str(path),
            line=1,
        )
    for entry in data:
        if not isinstance(entry, YamlMapping):
            raise AgentDefinitionError(f"each agent must be a mapping, got {entry!r}", path=str(path))
    return data


def build_agent(entry: YamlMapping, path: Path) -> BaseAgent:
    """One agent from its YAML mapping."""
    refuse_repeated_keys(entry, path)
    for key in entry:
        if key not in FIELDS:
            raise AgentDefinitionError(
                f"unknown field {key!r}; valid fields: {', '.join(FIELDS)}.{suggest(str(key), FIELDS)}",
                path=str(path),
                line=entry.key_lines.get(str(key), entry.line),
            )
    runners = [k for k in ("command", "function", "class") if k in entry]
    if len(runners) != 1:
        why = "has none" if not runners else f"has {', '.join(runners)}"
        raise AgentDefinitionError(
            f"agent {entry.get('agent_id', '?')!r} needs exactly one of 'command', 'function' or 'class' ({why})",
            path=str(path),
            line=entry.line,
        )
    common = cast(AgentOptions, {name: entry.get(name) for name in OPTION_NAMES})
    agent_id: Any = entry.get("agent_id")  # checked by the agent's spec, like every field below
    task_types: Any = entry.get("task_types")
    try:
        if "command" in entry:
            env = entry.get("env")
            if env is None or isinstance(env, Mapping):  # commands can find files beside their YAML
                env = {"PEPPER_AGENT_DIR": str(path.resolve().parent), **(env or {})}
            return CommandAgent(agent_id, entry["command"], task_types=task_types, env=env, **common)
        if "env" in entry:
            raise AgentDefinitionError("'env' applies to command agents only", field="env")
        runner = "function" if "function" in entry else "class"
        target = _import(entry[runner], path, runner)
        if "function" in entry:
            return FunctionAgent(target, agent_id, task_types=task_types, **common)
        if not (isinstance(target, type) and issubclass(target, BaseAgent)):
            raise AgentDefinitionError(f"'class' must name a BaseAgent subclass, got {target!r}", field="class")
        return target(agent_id, task_types=task_types, **common)
    except AgentDefinitionError as exc:
        if exc.path is not None:
            raise
        field = exc.field if exc.field in entry else None
        line = entry.key_lines.get(field, entry.line) if field else entry.line
        raise AgentDefinitionError(str(exc), path=str(path), line=line) from None
    except PepperError as exc:
        raise AgentDefinitionError(str(exc), path=str(path), line=entry.line) from None


def _import(reference: Any, path: Path, field: str) -> Any:
    """``module:attribute`` from the module beside the YAML file, else an importable one.

    A module beside the file is loaded under a name unique to its folder, so two
    agent folders that both have an ``agents.py`` do not collide. Its folder is put
    on ``sys.path`` so that it can import its own helper modules.
    """
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise AgentDefinitionError(
            f"expected 'module:attribute', e.g. 'my_agents:write_docs'; got {reference!r}", field=field
        )
    module_name, attribute = reference.split(":")
    try:
        module = _module_beside(path.resolve().parent, module_name) or importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentDefinitionError(f"cannot import module {module_name!r}: {exc}", field=field) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AgentDefinitionError(f"module {module_name!r} has no attribute {attribute!r}", field=field) from None


def _module_beside(folder: Path, module_name: str) -> ModuleType | None:
    """Load ``folder/module_name.py`` (or a package of that name) once per folder, or None."""
    relative = Path(*module_name.split("."))
    candidates = [folder / relative.with_suffix(".py"), folder / relative / "__init__.py"]
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        return None
    unique = f"_pepper_agents_{hashlib.blake2b(str(folder).encode(), digest_size=6).hexdigest()}_{module_name}"
    if unique in sys.modules:
        return sys.modules[unique]
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(unique, source)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[unique]
        raise ImportError(f"{type(exc).__name__}: {exc}") from exc
    return module


def agent_files(path: str | Path) -> list[Path]:
    """The YAML files at ``path`` (the file itself, or ``*.yaml``/``*.yml`` in a folder)."""
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise AgentDefinitionError("no .yaml or .yml files in this folder", path=str(target))
        return files
    if not target.exists():
        raise AgentDefinitionError("no such file or folder", path=str(target))
    return [target]


def read_agents(path: str | Path) -> list[BaseAgent]:
    """Every agent defined at ``path``; nothing is registered. Duplicate ids are an error."""
    agents: list[BaseAgent] = []
    seen: dict[str, str] = {}
    for file in agent_files(path):
        for entry in agent_entries(read_yaml(file), file):
            agent = build_agent(entry, file)
            if agent.spec.agent_id in seen:
                raise AgentDefinitionError(
                    f"agent id {agent.spec.agent_id!r} is defined twice (first in {seen[agent.spec.agent_id]})",
                    path=str(file),
                    line=entry.line,
                )
            seen[agent.spec.agent_id] = f"{file}:{entry.line}"
            agents.append(agent)
    return agents
