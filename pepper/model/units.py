"""Parsing of human-written quantities: durations ("15m") and sizes ("4Gi")."""

from __future__ import annotations

import math
import re
from typing import Any

from pepper.errors import ValidationError, shown

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")

# Sizes are expressed in MB (2**20 bytes), as memory and storage are everywhere in pepper.
_MIB = float(2**20)
_SIZE_UNITS = {
    "": 1.0,
    "Ki": 1024 / _MIB,
    "Mi": 1.0,
    "Gi": 1024.0,
    "Ti": 1024.0**2,
    "KiB": 1024 / _MIB,
    "MiB": 1.0,
    "GiB": 1024.0,
    "TiB": 1024.0**2,
    "K": 1e3 / _MIB,
    "M": 1e6 / _MIB,
    "G": 1e9 / _MIB,
    "T": 1e12 / _MIB,
    "KB": 1e3 / _MIB,
    "MB": 1e6 / _MIB,
    "GB": 1e9 / _MIB,
    "TB": 1e12 / _MIB,
}
_CPU_UNITS = {"": 1.0, "m": 0.001}
_QUANTITY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def _as_float(value: int | float, what: str) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond a float's range, e.g. 10**400
        raise ValidationError(f"{what} is far too large: a number beyond 1e308", field=what) from None


def _finite_non_negative(value: float, what: str) -> float:
    if math.isnan(value) or math.isinf(value):
        raise ValidationError(f"{what} must be a finite number, got {value!r}", field=what)
    if value < 0:
        raise ValidationError(f"{what} cannot be negative, got {value!r}", field=what)
    return float(value)


def parse_duration(value: Any, what: str = "duration", *, also: str = "") -> float:
    """Seconds from a number of seconds or a string such as ``"30s"``, ``"15m"``, ``"1h"``, ``"2d"``.

    ``also`` names other forms the caller takes (``"a datetime.timedelta"``): the errors list them with the rest."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # True is no number of seconds
        return _finite_non_negative(_as_float(value, what), what)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            number, unit = match.groups()
            seconds = float(number) * _DURATION_UNITS[unit or "s"]
            if math.isinf(seconds):  # more digits than a float holds
                raise ValidationError(f"{what} must be a finite number of seconds, got {shown(value)}", field=what)
            return seconds
        if _DURATION_RE.match(value.strip().removeprefix("-")):  # "-5m": a duration, but below zero
            raise ValidationError(f"{what} cannot be negative, got {value!r}", field=what)
    raise ValidationError(
        f"{what} {value!r} is not a duration; use seconds (e.g. 90) or a number with a unit: "
        f"'500ms', '30s', '15m', '1h', '2d', '1w'{f'; or {also}' if also else ''}",
        field=what,
    )


def parse_quantity(name: str, value: Any) -> float:
    """The amount of resource ``name`` in its base unit (cores for cpu, MB for memory/storage).

    Numbers are taken as the base unit. Strings may carry a unit: ``"500m"`` cpu
    (millicores), ``"512Mi"``/``"4Gi"``/``"1G"`` memory or storage. Other resources
    (``gpu``, ``llm_tokens``, ...) take plain numbers.
    """
    what = f"resource {name!r}"
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a number, got {value!r}", field=name)
    if isinstance(value, (int, float)):
        return _finite_non_negative(_as_float(value, what), what)
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a number or a string like '4Gi', got {value!r}", field=name)
    match = _QUANTITY_RE.match(value)
    if match is None:
        if value.strip().startswith("-"):
            raise ValidationError(f"{what} cannot be negative, got {value!r}", field=name)
        raise ValidationError(f"{what}: cannot read {value!r} as a quantity", field=name)
    number, unit = float(match.group(1)), match.group(2)
    units = _SIZE_UNITS if name in ("memory", "storage") else _CPU_UNITS if name == "cpu" else {"": 1.0}
    if unit not in units:
        valid = ", ".join(repr(u) for u in units if u) or "none (plain numbers only)"
        raise ValidationError(f"{what}: unknown unit {unit!r} in {value!r}; valid units: {valid}", field=name)
    return _finite_non_negative(number * units[unit], what)


def format_duration(seconds: float) -> str:
    """A short human form: ``950ms``, ``12.5s``, ``3m20s``, ``2h05m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


#: The most items one listing call of the Python API or the CLI returns (a page of the HTTP API holds fewer).
MOST_LISTED = 1_000_000


def check_limit(value: Any, most: int = MOST_LISTED, what: str = "limit") -> int:
    """``value`` as the most items a call returns: a whole number from 1 to ``most``. The one rule (and message)
    of every ``limit``: the Python API's listing calls, the CLI's ``--limit``, the HTTP API's ``?limit=``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValidationError(f"{what} must be a whole number from 1 to {most}, got {shown(value)}", field=what)
    return value


def check_wait(value: Any, what: str = "timeout", *, zero: bool = True) -> float | None:
    """``value`` as the most seconds a call waits: None (no limit) or a finite number, at least 0 (above 0
    unless ``zero``). The one rule of the timeouts of calls that wait."""
    if value is None:
        return None
    least = ">= 0" if zero else "above 0"
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value)
            or value < 0 or (value == 0 and not zero)):  # fmt: skip
        raise ValidationError(
            f"{what} must be a finite number of seconds {least} (or None to wait without limit), got {shown(value)}",
            field=what,
        )
    return float(value)


def _finite(value: float) -> bool:
    """Whether ``value`` is a finite number a float can hold (an int too large for one is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
