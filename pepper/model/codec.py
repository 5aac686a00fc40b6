"""JSON as pepper stores it: compact, strict (no NaN), and with clear errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any, Protocol, overload

from pepper.errors import InvalidTextError, NestingTooDeepError, NotSerializableError, ValidationError

#: How deep a value given to pepper (a task's inputs and metadata, a run's inputs, an agent's result...) may nest
#: lists and objects within each other.
MAX_DEPTH = 100
#: How deep a value pepper makes of such values (a fan-out's list of results, a sub-workflow's results by step)
#: may nest: every answer of the HTTP service still carries it.
STORED_DEPTH = 2 * MAX_DEPTH


def _other(value: Any) -> Any:
    """Read-only mappings (such as a task's ``dependency_results``) are stored as objects; else refused."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Row(Protocol):
    """A record as storage reads it back, columns by name: a ``sqlite3.Row`` or any mapping."""

    def __getitem__(self, column: str, /) -> Any: ...


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_other)
_decoder = json.JSONDecoder()
# The encoder of a flat object, made once: ``_encoder.encode`` makes one at every call (a third of a small
# result's cost). It keeps no record of the containers it is in (a flat object has none to loop back to), so it
# is shared by every thread. None where Python has no C encoder.
_flat = (
    c_make_encoder(None, _other, c_encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None and c_encode_basestring is not None
    else None
)
_canonical = json.JSONEncoder(allow_nan=False, separators=(",", ":"), sort_keys=True, default=_other)


def same(first: Any, second: Any) -> bool:
    """Whether two JSON values say the same: equal, and of the same JSON types throughout (``True``, ``1`` and
    ``1.0`` are equal in Python but not the same value here). Key order does not count."""
    if first != second:
        return False
    if type(first) in _FLAT and type(second) in _FLAT:
        return type(first) is type(second)
    try:
        return _canonical.encode(first) == _canonical.encode(second)
    except (TypeError, ValueError, RecursionError):  # not JSON (keys of mixed types...): equal is all one can say
        return True


def encode(value: Any, what: str = "value", *, depth: int = STORED_DEPTH) -> str:
    """``value`` as compact JSON; raises ``NotSerializableError`` naming ``what`` (``NestingTooDeepError``, saying
    at most ``depth`` levels are kept, for one nested too deep to be written at all)."""
    try:
        return _encoder.encode(value)
    except RecursionError:
        raise NestingTooDeepError(what, depth) from None
    except (TypeError, ValueError) as exc:
        raise NotSerializableError(what, str(exc)) from None


def encode_checked(value: Any, what: str = "value") -> str:
    """``encode``, and refuse text SQLite cannot store (see ``check_utf8``)."""
    text = encode(value, what)
    check_utf8(text, value, what)
    return text


def check_utf8(text: str, value: Any, what: str) -> None:
    """Raise ``InvalidTextError`` if ``text`` (the JSON of ``value``) cannot be written as UTF-8.

    A string with a lone surrogate (what ``os.listdir`` or ``sys.argv`` give for a name that is
    not UTF-8) encodes to JSON but is refused when SQLite binds it: catch it here, at the door,
    and say where it is.
    """
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        where, bad = _find_unencodable(value, what) or (what, text)
        raise InvalidTextError(what, where, bad) from None


def _find_unencodable(value: Any, where: str) -> tuple[str, str] | None:
    """Where in ``value`` the first string that is not valid UTF-8 is (a key or a value), and that string."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where, value
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _find_unencodable(key, f"a key of {where}") or _find_unencodable(item, f"{where}[{key!r}]")
            if found:
                return found
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{where}[{index}]")
            if found:
                return found
    return None


def encode_ids(ids: tuple[str, ...]) -> str:
    """A JSON list of validated ids (printable strings); joined directly unless one needs escaping."""
    if not ids:
        return "[]"
    together = "".join(ids)  # (tested before the quotes that separate them are put in)
    if '"' in together or "\\" in together or not together.isprintable():
        return encode(list(ids))
    return '["' + '","'.join(ids) + '"]'


def decode(text: str | None) -> Any:
    """The value stored as ``text`` (``None`` stays ``None``)."""
    return None if text is None else _decoder.decode(text)


def mapping(value: Any, what: str, example: str) -> Mapping[Any, Any]:
    """``value`` if it is a mapping, else a ``ValidationError`` naming ``what`` and showing ``example`` of one."""
    if type(value) is not dict and not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping {example}; got {type(value).__name__}", field=what)
    return value


def depth_of(value: Any, limit: int) -> int:
    """How many levels of lists and objects ``value`` (a JSON value: dicts, lists and scalars) nests: 0 for a
    scalar, 1 for ``[1, 2]``, 2 for ``{"a": [1]}``; counting stops at ``limit + 1``."""
    depth = 0
    level = [value] if type(value) is dict or type(value) is list else []
    while level and depth <= limit:
        depth += 1
        inner = []
        for container in level:
            for item in container.values() if type(container) is dict else container:
                if type(item) is dict or type(item) is list:
                    inner.append(item)
        level = inner
    return depth


def check_depth(value: Any, what: str, limit: int = MAX_DEPTH) -> None:
    """Raise ``NestingTooDeepError`` naming ``what`` if the JSON value ``value`` nests deeper than ``limit``."""
    if depth_of(value, limit) > limit:
        raise NestingTooDeepError(what, limit)


@overload
def normalise(value: Mapping[str, Any], what: str = "value", *, depth: int = STORED_DEPTH) -> tuple[Any, str]: ...
@overload
def normalise(value: Any, what: str = "value", *, depth: int = STORED_DEPTH) -> tuple[Any, str | None]: ...
def normalise(value: Any, what: str = "value", *, depth: int = STORED_DEPTH) -> tuple[Any, str | None]:
    """The value as it will read back from storage, and its JSON text.

    Round-tripping makes tuples lists and dict keys strings now, rather than
    surprising the agent that later reads the stored copy. ``None`` is stored
    as SQL NULL (no JSON text). A value nesting lists and objects more than
    ``depth`` levels is refused (``NestingTooDeepError``): where a value enters
    pepper, pass ``depth=MAX_DEPTH``.
    """
    if value is None:
        return None, None
    if type(value) is dict and _flat is not None:
        for k, v in value.items():  # (a loop, not ``all`` over a generator: this runs once an attempt)
            if type(k) is not str or type(v) not in _FLAT:
                break
        else:  # a flat object (most results): it cannot hold itself, and reads back as a shallow copy
            try:
                text = "".join(_flat(value, 0))
            except ValueError as exc:  # NaN or an infinity
                raise NotSerializableError(what, str(exc)) from None
            check_utf8(text, value, what)
            return dict(value), text
    text = encode(value, what, depth=depth)
    check_utf8(text, value, what)
    if type(value) in _SCALARS:  # plain scalars read back unchanged
        return value, text
    return _nested(text, what, depth), text


def _nested(text: str, what: str, depth: int) -> Any:
    """The value ``text`` holds, refused if it nests deeper than ``depth``."""
    try:
        value = _decoder.decode(text)
    except RecursionError:  # nested too deep for the decoder: deeper than any limit
        raise NestingTooDeepError(what, depth) from None
    if text.count("[") + text.count("{") > depth:  # (fewer brackets, even counting those in strings: not as deep)
        check_depth(value, what, depth)
    return value


_SCALARS = frozenset({str, int, float, bool})
_FLAT = frozenset({str, int, float, bool, type(None)})
