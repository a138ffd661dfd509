"""The two kinds of schema field OmegaConf lacks: a name from a closed set (an Enum that
behaves as its string) and a number or list kept within bounds (dataclass field metadata that
``config.check_ranges`` reads)."""

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
