"""A fan-out step's own fields checked: its ``for_each`` list or expression, ``max_parallel`` and
``expected_items``, and the most items a step fans out over."""

from __future__ import annotations

from typing import Any

from pepper.errors import ValidationError
from pepper.model import codec, expressions

#: The most items a plan assumes of a fan-out step (its ``expected_items``; checked when planning, not when a
#: workflow is read: runs stored with more stay readable), and the most it fans out over when it runs (a longer
#: ``for_each`` list fails the step, and no item task is made).
MAX_EXPECTED_ITEMS = 10_000


def check_fan_out(for_each: Any, max_parallel: Any, expected_items: Any) -> tuple[Any, int | None, int | None]:
    """``for_each``, ``max_parallel`` and ``expected_items`` checked (``ValidationError`` naming the field)."""
    if for_each is not None:
        if isinstance(for_each, str):
            expressions.parse(for_each)
        elif isinstance(for_each, (list, tuple)):
            if len(for_each) > MAX_EXPECTED_ITEMS:
                raise ValidationError(
                    f"for_each may list at most {MAX_EXPECTED_ITEMS:,} items (a step fans out over that many at "
                    f"most), got {len(for_each):,}; split the work over several steps or runs",
                    field="for_each",
                )
            for_each = codec.normalise(list(for_each), "for_each")[0]
        else:
            raise ValidationError(
                "for_each must be an expression giving a list (e.g. '${{ steps.scan.result.modules }}' or "
                f"'${{{{ inputs.pages }}}}') or a list, got {type(for_each).__name__}",
                field="for_each",
            )
    for name, value in (("max_parallel", max_parallel), ("expected_items", expected_items)):
        if value is None:
            continue
        if for_each is None:
            raise ValidationError(f"{name} applies only to a step with for_each", field=name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "max_parallel" else 0):
            least = "a whole number of at least 1" if name == "max_parallel" else "a whole number (0 or more)"
            raise ValidationError(f"{name} must be {least}, got {value!r}", field=name)
    return for_each, max_parallel, expected_items
