"""Building frozen, slotted dataclasses quickly, for the records made by the hundred thousand.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own refuses); setting
the slots through their descriptors does the same four times as fast. ``quick_init`` writes such a function
for a class once: the same arguments as its ``__init__``, with the same defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> Callable[..., T]:
    """A function taking ``cls``'s fields as its ``__init__`` does and returning the instance, built without the
    frozen ``__setattr__`` detour. Only for a frozen, slotted dataclass without ``__post_init__``."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} must be a slotted dataclass without __post_init__")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": dataclasses.MISSING}
    signature: list[str] = []
    body: list[str] = []
    for f in params:
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            signature.append(f"{f.name}=_MISSING")
            body.append(f"    if {f.name} is _MISSING:\n        {f.name} = _factory_{f.name}()")
        else:
            signature.append(f.name)
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def build({', '.join(signature)}):\n    self = _new(_cls)\n" + "\n".join(body) + "\n    return self\n"
    exec(source, namespace)
    build: Callable[..., T] = namespace["build"]
    build.__doc__ = f"A new {cls.__name__} (as its __init__ builds it)."
    return build
