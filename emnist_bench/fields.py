"""The two kinds of schema field OmegaConf lacks: a name from a closed set (an Enum that
behaves as its string) and a number or list kept within bounds (dataclass field metadata that
``config.check_ranges`` reads); and a schema's defaults, which stand in for keys an older run's
config lacks."""

import dataclasses
from dataclasses import field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING


class Choice(StrEnum):
    """A name from a fixed set; compares, hashes, formats and serialises as its string."""


def bounded(
    default: Any = MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    min_len: int | None = None,
    why: str = "",
) -> Any:
    """A field that :func:`check_ranges` keeps within bounds: ``ge``/``gt``/``lt`` for a number
    or each number of a list, ``min_len`` for a list's length. ``why`` ends the message about a
    number, or replaces the one about a list too short."""
    bounds = {"ge": ge, "gt": gt, "lt": lt, "min_len": min_len}
    metadata = {key: value for key, value in bounds.items() if value is not None}
    metadata["why"] = why
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def field_defaults(schema: type) -> dict[str, Any]:
    """The value each field of the dataclass ``schema`` takes where a config leaves it out, as a
    resolved config holds it (a nested schema as a dict, a name as its string); fields an option
    must give (``???``) have none."""
    found: dict[str, Any] = {}
    for item in dataclasses.fields(schema):
        if item.default_factory is not dataclasses.MISSING:
            value = item.default_factory()
        elif item.default not in (dataclasses.MISSING, MISSING):
            value = item.default
        else:
            continue
        if dataclasses.is_dataclass(value):  # the schema's fields as a nested schema's defaults
            value = field_defaults(type(value))
        found[item.name] = str(value) if isinstance(value, Choice) else value
    return found
