"""Reading ``pepper submit`` arguments: ``--input KEY=VALUE``, ``--inputs JSON``, and priorities."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import click

_INTEGER = re.compile(r"^[+-]?\d+$")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")  # so NaN and Infinity stay strings


def parse_value(text: str) -> Any:
    """JSON when ``text`` is a JSON value (``3``, ``true``, ``[1, 2]``), else the text itself."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return text


def parse_inputs(pairs: Sequence[str], document: str | None) -> dict[str, Any]:
    """``--inputs`` (a JSON object) overlaid with each ``--input KEY=VALUE``; a key given twice with ``--input`` is
    refused (which value was meant?), one ``--input`` over a key of ``--inputs`` replaces it."""
    inputs: dict[str, Any] = {}
    if document is not None:
        try:
            parsed = json.loads(document, parse_constant=_no_constants)
        except ValueError as exc:
            raise click.BadParameter(f"not valid JSON ({exc})", param_hint="'--inputs'") from None
        if not isinstance(parsed, dict):
            raise click.BadParameter(
                'must be a JSON object, e.g. --inputs \'{"path": "README.md"}\'', param_hint="'--inputs'"
            )
        inputs.update(parsed)
    given: set[str] = set()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE (e.g. --input n=3), got {pair!r}", param_hint="'--input'")
        key = key.strip()
        if key in given:
            raise click.BadParameter(
                f"{key!r} is given twice; give each key once (a list is one value: --input {key}='[1, 2]')",
                param_hint="'--input'",
            )
        given.add(key)
        inputs[key] = parse_value(value)
    return inputs


def parse_priority(text: str) -> str | int:
    """An integer when the text is one, else the name (pepper checks names)."""
    return int(text) if _INTEGER.match(text.strip()) else text
