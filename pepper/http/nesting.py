"""How deep a workflow document sent to the server may nest, checked before it is read.

Reading a document (``pepper.core.documents``) writes a mapping out as YAML and parses the text, both by
recursion: a document nested a few hundred levels deep would exhaust Python's stack there. The server measures
the document first, the YAML text by its parser's events (which do not recurse), and refuses one nesting more
than ``codec.MAX_DEPTH`` levels with the ``NestingTooDeepError`` any value that deep gets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pepper.errors import NestingTooDeepError
from pepper.model import codec


def check_document_depth(document: Any, limit: int = codec.MAX_DEPTH) -> None:
    """Refuse a workflow document (YAML text, or the JSON value of one) nesting more than ``limit`` levels of
    mappings and lists."""
    depth = yaml_depth(document, limit) if isinstance(document, str) else codec.depth_of(document, limit)
    if depth > limit:
        raise NestingTooDeepError("workflow", limit)


def yaml_depth(text: str, limit: int) -> int:
    """How many levels of mappings and sequences the YAML ``text`` nests (an alias counts as deep as the node it
    names); counting stops past ``limit``. Text that is not YAML counts 0: reading it says what is wrong."""
    import yaml  # loaded by those who send documents

    readers: list[Any] = [yaml.SafeLoader]
    if hasattr(yaml, "CSafeLoader"):  # libyaml: much faster, but it refuses text nesting past its own bound
        readers.insert(0, yaml.CSafeLoader)
    for reader in readers:
        try:
            return _depth(yaml.parse(text, Loader=reader), limit)
        except yaml.YAMLError:
            continue
    return 0


def _depth(events: Iterable[Any], limit: int) -> int:
    """``yaml_depth`` of a YAML text's parser events."""
    import yaml

    open_nodes: list[list[Any]] = []  # per open collection: its anchor, and how deep what it holds so far nests
    heights: dict[str, int] = {}  # per anchor: how deep its node nests
    deepest = 0
    for event in events:
        reached = 0
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append([event.anchor, 0])
            reached = len(open_nodes)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, below = open_nodes.pop()
            _held(open_nodes, heights, anchor, below + 1)
        elif isinstance(event, yaml.AliasEvent):
            height = heights.get(event.anchor or "", 0)
            reached = len(open_nodes) + height
            _held(open_nodes, heights, None, height)
        elif isinstance(event, yaml.ScalarEvent) and event.anchor:
            heights[event.anchor] = 0
        deepest = max(deepest, reached)
        if deepest > limit:
            break
    return deepest


def _held(open_nodes: list[list[Any]], heights: dict[str, int], anchor: str | None, height: int) -> None:
    """A node ``height`` levels deep (named ``anchor``, if any) ended inside the innermost open collection."""
    if anchor:
        heights[anchor] = height
    if open_nodes:
        open_nodes[-1][1] = max(open_nodes[-1][1], height)
