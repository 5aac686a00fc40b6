"""When a task may start: its ``delay`` or ``not_before`` turned into one time (seconds since the epoch).

A ``not_before`` is an aware ``datetime``, an ISO 8601 text with a UTC offset (``2026-01-02T03:04:05+00:00``,
``...Z``) or seconds since the epoch (a number, or its digits as text). A time without a zone is refused:
pepper never guesses a zone.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pepper.errors import InvalidDelayError, ValidationError, shown
from pepper.model.units import parse_duration

#: The longest delay pepper takes (what a timeout may be, too): a year and a day.
MAX_DELAY = 366 * 86400.0

#: The latest time pepper takes (9999-12-31T23:59:59Z): the last second a date can show.
LATEST_TIME = 253402300799.0

_DELAY_FORMS = "seconds (e.g. 90), a duration such as '30s', '15m', '2h', '1d', or a datetime.timedelta"
_TIME_FORMS = (
    "a timezone-aware datetime, an ISO 8601 time with its UTC offset (e.g. '2026-03-01T09:00:00+00:00' or "
    "'2026-03-01T09:00:00Z'), or seconds since the epoch"
)

#: Seconds since the epoch written as text: digits, maybe with a fraction.
_EPOCH = re.compile(r"\d+(\.\d+)?")


def parse_delay(value: Any) -> float:
    """Seconds of a delay: a number, a duration text or a ``timedelta``; never negative."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str) and value.strip().startswith("-"):
        raise InvalidDelayError(f"delay cannot be negative, got {value!r}; give {_DELAY_FORMS}", field="delay")
    else:
        try:
            seconds = parse_duration(value, "delay", also="a datetime.timedelta")
        except ValidationError as exc:
            raise InvalidDelayError(str(exc), field="delay") from None
    if seconds < 0:
        raise InvalidDelayError(f"delay cannot be negative, got {shown(value)}; give {_DELAY_FORMS}", field="delay")
    if seconds > MAX_DELAY:
        raise InvalidDelayError(
            f"delay {shown(value)} is longer than 366 days; use not_before for a fixed time", field="delay"
        )
    return seconds


def parse_time(value: Any, what: str = "not_before") -> float:
    """Seconds since the epoch of an aware ``datetime``, an ISO 8601 text with an offset, or a number;
    no later than :data:`LATEST_TIME`."""
    at = _seconds(value, what)
    if at > LATEST_TIME:
        raise InvalidDelayError(
            f"{what} {shown(value)} is later than {iso_utc(LATEST_TIME)}, the latest time pepper takes", field=what
        )
    return at


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise InvalidDelayError(f"{what} must be {_TIME_FORMS}; got {value!r}", field=what)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise InvalidDelayError(f"{what} must be {_TIME_FORMS}; got {value!r}", field=what)
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            if _EPOCH.fullmatch(text):  # seconds as text (a command line's); 20260301 stays a date, zoneless
                return float(text)
            raise InvalidDelayError(f"{what} {value!r} is not a time; give {_TIME_FORMS}", field=what) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidDelayError(
                f"{what} {value.isoformat()} has no time zone, so it could mean any of 26 hours; give it one, "
                f"e.g. {value.replace(tzinfo=UTC).isoformat()} for UTC",
                field=what,
            )
        return value.timestamp()
    raise InvalidDelayError(f"{what} must be {_TIME_FORMS}; got {type(value).__name__}", field=what)


def start_time(delay: Any, not_before: Any, now: float) -> float | None:
    """The time a task may start from its ``delay`` (after ``now``) or its ``not_before``; None for neither."""
    if delay is not None and not_before is not None:
        raise InvalidDelayError(
            "give delay or not_before, not both: delay counts from the submission, not_before is a fixed time",
            field="delay",
        )
    if delay is not None:
        seconds = parse_delay(delay)
        return now + seconds if seconds > 0 else None
    if not_before is not None:
        return parse_time(not_before)
    return None


def iso_utc(at: float) -> str:
    """``2026-03-01T09:00:00Z``: a time as people and machines both read it (a time no date can show, as a
    stored row of an older version may hold, is given in seconds since the epoch)."""
    try:
        return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{at!r} seconds since the epoch"
