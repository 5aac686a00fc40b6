"""Turning pepper's values into words for people: times, durations, states, JSON, consoles."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from pepper.model.task import TaskState

_T = TypeVar("_T")

#: Width of tables when output goes to a pipe or a file (rather than 80 columns).
_PIPE_WIDTH = 200

STATE_STYLES: dict[str, str] = {
    TaskState.BLOCKED.value: "magenta",
    TaskState.PENDING.value: "yellow",
    TaskState.IN_PROGRESS.value: "cyan",
    TaskState.PARKED.value: "red",
    TaskState.COMPLETED.value: "green",
    TaskState.FAILED.value: "bold red",
    TaskState.CANCELLED.value: "dim",
}


def make_console(stderr: bool = False) -> Console:
    """A rich console: colours only on a terminal; unfolded lines when writing to a pipe or file."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
        if "COLUMNS" not in os.environ:
            console.width = _PIPE_WIDTH
    return console


def print_json(data: Any) -> None:
    """Machine-readable output: indented JSON on stdout, nothing else (escaped if stdout is not UTF-8)."""
    ascii_only = not (getattr(sys.stdout, "encoding", None) or "").lower().startswith("utf")
    click.echo(json.dumps(data, indent=2, ensure_ascii=ascii_only, default=str))


def text_console(as_json: bool, data: Any) -> Console | None:
    """With ``--json``: print ``data`` as JSON and return None (all is said); else the console for the text."""
    if as_json:
        print_json(data)
        return None
    return make_console()


def listing_console(as_json: bool, rows: Sequence[_T], to_json: Callable[[_T], Any], *empty: Text) -> Console | None:
    """The start of a listing: with ``--json`` the rows as JSON, else the ``empty`` lines when there are
    none; either way None (all is said). Otherwise the console to draw the rows on."""
    if as_json:
        print_json([to_json(row) for row in rows])
        return None
    console = make_console()
    if not rows:
        for line in empty:
            console.print(line)
        return None
    return console


def error_line(message: str) -> Text:
    """``error: <message>`` for stderr."""
    return Text.assemble(("error: ", "bold red"), message)


# --- states ----------------------------------------------------------------------------


def state_label(state: TaskState | str) -> str:
    """The state as stored (``in_progress``): the word people type back to ``--state`` and read in JSON."""
    return state.value if isinstance(state, TaskState) else str(state)


def state_text(state: TaskState | str) -> Text:
    """The state's name in its colour."""
    value = state.value if isinstance(state, TaskState) else str(state)
    return Text(state_label(value), style=STATE_STYLES.get(value, ""))


# --- times -----------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """``0.12s``, ``4.5s``, ``2m 05s``, ``3h 04m``, ``2d 05h``."""
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 0.01:
        return "<0.01s"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def relative(at: float, now: float) -> str:
    """``5m 02s ago`` or ``in 3.00s``."""
    delta = now - at
    if abs(delta) < 0.5:
        return "just now"
    return f"{duration(delta)} ago" if delta > 0 else f"in {duration(-delta)}"


def clock_time(at: float | None) -> str:
    """Local date and time, to the second."""
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


# --- values ------------------------------------------------------------------------------


def one_line(value: Any, width: int = 48) -> str:
    """A value squeezed onto one line of at most ``width`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def clip_lines(text: str, max_lines: int = 40, max_width: int = 300) -> tuple[str, int]:
    """At most ``max_lines`` lines, each at most ``max_width`` characters; also how many lines were dropped."""
    lines = text.splitlines() or [""]
    kept = [line if len(line) <= max_width else line[: max_width - 1] + "…" for line in lines[:max_lines]]
    return "\n".join(kept), max(0, len(lines) - max_lines)


def pretty(value: Any) -> str:
    """Strings as they are, everything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def attempts_text(attempts: int, max_retries: int, policy: str | None) -> str:
    """``2 of 3``; with a recovery policy (which decides how many there may be), just ``2``."""
    if policy is not None or attempts > max_retries + 1:
        return str(attempts)
    return f"{attempts} of {max_retries + 1}"
