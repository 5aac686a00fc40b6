"""The root of the error tree, and the helpers its messages share."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any


def suggest(value: str, valid: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' when ``value`` is close to a valid name, else ''."""
    match = get_close_matches(str(value), list(valid), n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (a huge int has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


#: A quoted text in a message longer than this (longer than any id pepper takes) is cut to its first ``_KEPT``
#: characters: an id or name given by mistake may be megabytes long.
_LONGEST_QUOTED = 200
_KEPT = 100
# A repr of a text: a quote not inside a word (so not the apostrophe of "agent's"), then the text, whose own
# quotes a repr escapes, then the same quote not followed by a word character.
_QUOTED = re.compile(
    rf"(?<!\w)(?:'(?:[^'\\]|\\.){{{_LONGEST_QUOTED + 1},}}'|\"(?:[^\"\\]|\\.){{{_LONGEST_QUOTED + 1},}}\")(?!\w)",
    re.DOTALL,
)


def _cut(match: re.Match[str]) -> str:
    text = match.group()
    return f"{text[: _KEPT + 1]}…{text[0]} ({len(text) - 2:,} characters)"


def shortened(message: str) -> str:
    """``message`` with every quoted text longer than an id may be (200 characters) cut to its first 100
    characters and its length: ``'aaaa…' (100,000 characters)``. Every pepper error's message goes through it."""
    if len(message) <= _LONGEST_QUOTED:
        return message
    return _QUOTED.sub(_cut, message)


def _rebuilt(cls: type[PepperError], args: tuple[Any, ...], state: dict[str, Any]) -> PepperError:
    """An error unpickled as it was: its message and its fields, without its ``__init__`` making them again."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


#: The attributes of errors that may travel to another process as they are (an HTTP answer's ``facts``): ids,
#: names and lists of them, never a location, a URL or a value a caller sent (they may hold a password or be huge).
SHARED_FACTS = frozenset({
    "task_id", "run_id", "step_id", "agent_id", "allocation_id", "task_type", "rejected", "shortfall", "cycle",
    "pending", "known", "valid", "failures", "differences", "scope", "needed", "name", "state", "timeout", "limit",
    "line", "by", "token_name", "source", "target", "parked",
})  # fmt: skip


def facts(error: BaseException) -> dict[str, Any]:
    """The ``SHARED_FACTS`` ``error`` holds whose values are JSON-ready: texts, numbers, and lists and mappings of
    them."""
    return {name: value for name, value in vars(error).items() if name in SHARED_FACTS and _plain(value)}


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or type(value) in (str, int, float, bool):
        return True
    if depth >= 2:
        return False
    if type(value) in (list, tuple):
        return all(_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(key) is str and _plain(item, depth + 1) for key, item in value.items())
    return False


def with_facts(error: PepperError, found: Any) -> PepperError:
    """``error`` holding the ``SHARED_FACTS`` of ``found`` (as another process sent them: lists as tuples)."""
    if isinstance(found, dict):
        for name, value in found.items():
            if name in SHARED_FACTS:
                setattr(error, name, _tuples(value))
    return error


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


class PepperError(Exception):
    """Root of every error raised by pepper."""

    def __init__(self, *args: Any) -> None:
        if args and isinstance(args[0], str):
            args = (shortened(args[0]), *args[1:])
        super().__init__(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own pickling calls __init__ with the finished message as its arguments, which most
        # errors here would word again (or refuse): an error sent to another process must arrive unchanged.
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))
