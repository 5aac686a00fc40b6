"""The options of an agent beside its id, task types and runner, declared once.

``AgentOptions`` is the declaration: each option's name and type, with its default and its check
attached (``Annotated[type, Option(default, check)]``). Everything else derives from it:
``@pepper.agent``, ``BaseAgent`` and the function and command agents take
``**options: Unpack[AgentOptions]``; ``AgentSpec.build`` checks each given value with
``check_options``; the YAML loader accepts ``OPTION_NAMES`` as keys and passes them on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, TypedDict, get_type_hints

from pepper.errors import AgentDefinitionError, ValidationError, suggest
from pepper.model import codec
from pepper.model.recovery import Policy
from pepper.model.requirements import parse_names
from pepper.model.resources import Resources


def _as_given(value: Any) -> Any:
    return value


def _skills(value: Any) -> frozenset[str]:
    return parse_names(value, "skills")


def _capacity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"capacity must be a whole number >= 1, got {value!r}", field="capacity")
    return value


def _resources(value: Any) -> Resources:
    return Resources.parse(value, "resources")


def _type(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"type must be a name such as 'reviewer', got {value!r}", field="type")
    return value or None


def _config(value: Any) -> dict[str, Any]:
    config = dict(codec.mapping(value, "config", "of settings, e.g. {'max_result_mb': 50}"))
    cap = config.get("max_result_mb")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 < cap < math.inf):
        raise ValidationError(
            "max_result_mb must be a positive number of megabytes (the largest result "
            f"the agent may return, 10 by default), got {cap!r}",
            field="max_result_mb",
        )
    codec.encode_checked(config, "config")
    return config


def _recovery(value: Any) -> Policy | None:
    if value is None:
        return None
    try:
        return Policy.parse(value)
    except ValidationError as exc:
        raise ValidationError(str(exc), field="recovery") from None


#: Where an agent's attempts may run: ``local`` (the engine's loop, a thread or a subprocess) or ``ray``.
EXECUTORS = ("local", "ray")


def _executor(value: Any) -> str | None:
    if value is not None and value not in EXECUTORS:
        raise ValidationError(
            f"executor must be one of {', '.join(EXECUTORS)} (or left out: the runtime's executor), got {value!r}",
            field="executor",
        )
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Option:
    """How one agent option is read: the value it takes when not given (``None``), and its check, which
    turns what the user wrote into the value the spec holds or raises a ``ValidationError`` naming it."""

    default: Any = None
    check: Callable[[Any], Any] = field(default=_as_given)

    def read(self, value: Any) -> Any:
        return self.check(self.default if value is None else value)


class AgentOptions(TypedDict, total=False):
    """The options of an agent beside its id and task types (see ``BaseAgent`` for each)."""

    skills: Annotated[Iterable[str] | None, Option(frozenset(), _skills)]
    capacity: Annotated[int, Option(1, _capacity)]
    resources: Annotated[Mapping[str, Any] | None, Option(None, _resources)]
    type: Annotated[str | None, Option(None, _type)]  # None: the agent's kind (or its class's name)
    config: Annotated[Mapping[str, Any] | None, Option(MappingProxyType({}), _config)]
    recovery: Annotated[Any, Option(None, _recovery)]  # e.g. "retry(2) -> reassign"
    executor: Annotated[str | None, Option(None, _executor)]  # None: the runtime's (``local`` unless set)


#: Each option's name -> how it is read, in declaration order.
OPTIONS: Mapping[str, Option] = {
    name: hint.__metadata__[0] for name, hint in get_type_hints(AgentOptions, include_extras=True).items()
}
OPTION_NAMES: tuple[str, ...] = tuple(OPTIONS)


def check_options(agent_id: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option's checked value (its default where ``given`` has none or ``None``); an unknown name or a
    bad value raises ``AgentDefinitionError`` naming the agent, the option and what is valid."""
    for name in given:
        if name not in OPTIONS:
            raise AgentDefinitionError(
                f"agent {agent_id!r}: unknown option {name!r}; valid options: {', '.join(OPTION_NAMES)}."
                f"{suggest(name, OPTION_NAMES)}",
                field=name,
            )
    try:
        return {name: option.read(given.get(name)) for name, option in OPTIONS.items()}
    except ValidationError as exc:
        raise AgentDefinitionError(f"agent {agent_id!r}: {exc}", field=exc.field) from None
