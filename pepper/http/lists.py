"""The shape of every list answer, ``{"items": [...], "next_cursor": ... | null}``, and its cursor."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel

from pepper.errors import ValidationError
from pepper.model.units import check_limit
from pepper.store.protocol import TaskPlace

T = TypeVar("T")

#: The most items one page holds.
MAX_LIMIT = 1000

#: ``?limit=``: its range is checked by ``listed`` (the rule of every limit, ``check_limit``), not by FastAPI, so
#: a limit out of range is refused with the words of the Python API and the CLI.
Limit = Annotated[
    int,
    Query(
        description=f"How many items, from 1 to {MAX_LIMIT}.", json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT}
    ),
]
Cursor = Annotated[str | None, Query(description="The `next_cursor` of the previous page.")]

_NOT_MADE_HERE = "the cursor is not one this server made; pass the `next_cursor` of a page as it was"


class Page(BaseModel):
    """A page of a list, newest first; ``next_cursor`` fetches the next page (null on the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


def listed(limit: int) -> int:
    """``limit`` checked: a whole number from 1 to ``MAX_LIMIT`` (else a ``ValidationError``, 400)."""
    return check_limit(limit, MAX_LIMIT)


def encode_cursor(key: str) -> str:
    """An opaque cursor for the item ``key`` (the last one of a page)."""
    return base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for; a cursor this server did not make is a ``ValidationError``."""
    if not cursor:  # an empty cursor is the first page
        return None
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        key = ""
    if not key:
        raise ValidationError(_NOT_MADE_HERE, field="cursor")
    return key


def encode_task_cursor(after: str | TaskPlace) -> str:
    """The cursor of a page of tasks ending at ``after``: best its place (its id, submission time and number in
    submission order), which says where it was even once it is no longer stored (a line break is in no id)."""
    if isinstance(after, str):
        return encode_cursor(after)
    seq = "" if after.seq is None else f"\n{after.seq}"
    return encode_cursor(f"{after.task_id}\n{float(after.created_at)!r}{seq}")


def decode_task_cursor(cursor: str | None) -> str | TaskPlace | None:
    """What a cursor of tasks names: a task's place, or a task id alone (a cursor made of the id only)."""
    key = decode_cursor(cursor)
    if key is None or "\n" not in key:
        return key
    task_id, at, *seq = key.split("\n")
    try:
        place = TaskPlace(task_id, float(at), *(int(n) for n in seq))
    except (ValueError, TypeError):
        raise ValidationError(_NOT_MADE_HERE, field="cursor") from None
    if not task_id or not math.isfinite(place.created_at):
        raise ValidationError(_NOT_MADE_HERE, field="cursor")
    return place


def page(items: Sequence[T], limit: int, key: Callable[[T], str], show: Callable[[T], dict[str, Any]]) -> Page:
    """A page from up to ``limit + 1`` items (one more than shown says whether there is a next page)."""
    shown = list(items[:limit])
    more = len(items) > limit and shown
    return Page(items=[show(i) for i in shown], next_cursor=encode_cursor(key(shown[-1])) if more else None)


def ordered_page(
    items: Iterable[T], limit: int, cursor: str | None, order: Callable[[T], tuple[float, str]],
    show: Callable[[T], dict[str, Any]],
) -> Page:  # fmt: skip
    """A page of ``items`` in the order of ``order`` (a time and an id: one place per item), from just after the
    item ``cursor`` stood for: an item that left the list between two pages moves no other one to another page."""
    ranked = sorted(items, key=order)
    since = place_after(cursor)
    if since is not None:
        ranked = [item for item in ranked if order(item) > since]
    return page(ranked, limit, lambda item: place_key(order(item)), show)


def place_after(cursor: str | None) -> tuple[float, str] | None:
    """The place (a time and an id) an ordered page's ``cursor`` goes on after; None for the first page."""
    return _place(decode_cursor(cursor))


def place_key(place: tuple[float, str]) -> str:
    """The key of an ordered page's cursor going on after ``place``."""
    return json.dumps(list(place))


def _place(key: str | None) -> tuple[float, str] | None:
    """The place (a time and an id) an ``ordered_page`` cursor's key names."""
    if key is None:
        return None
    try:
        at, name = json.loads(key)
    except (ValueError, TypeError):
        at = name = None
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or not isinstance(name, str):
        raise ValidationError(_NOT_MADE_HERE, field="cursor")
    return float(at), name


def whole(items: Sequence[T], show: Callable[[T], dict[str, Any]]) -> Page:
    """A page holding everything (lists short enough to need no cursor)."""
    return Page(items=[show(i) for i in items])
