"""A measured figure, its goal, and the one line ``make bench`` prints for it.

A figure measured in several rounds (``Figure.of_rounds``) keeps every round's value; its value
is the worst of them when it has a goal (a goal counts as met only when every round meets it)
and the median otherwise."""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Figure:
    """``goal`` is None for context figures (printed with ``(info)`` instead of a goal)."""

    name: str
    value: float
    goal: float | None = None
    op: str = "<="
    unit: str = ""
    note: str = ""
    rounds: tuple[float, ...] = ()  # each round's value (empty: measured once)

    def __post_init__(self) -> None:
        if self.op not in _OPERATORS:
            raise ValueError(f"unknown goal operator {self.op!r}")

    @classmethod
    def of_rounds(
        cls,
        name: str,
        rounds: Sequence[float],
        goal: float | None = None,
        op: str = "<=",
        unit: str = "",
    ) -> Figure:
        """A figure from each round's value: the worst round's (the largest for ``<=``, the
        smallest for ``>=``) when it has a goal, the median when it has none."""
        if not rounds:
            raise ValueError(f"{name}: no rounds")
        if goal is None:
            value = statistics.median(rounds)
        else:
            value = max(rounds) if op == "<=" else min(rounds)
        return cls(name, value, goal, op, unit, rounds=tuple(rounds))

    @property
    def spread(self) -> str:
        """``min / median / max`` of the rounds ("-" when measured once)."""
        if len(self.rounds) < 2:
            return "-"
        values = (min(self.rounds), statistics.median(self.rounds), max(self.rounds))
        return " / ".join(format_value(value) for value in values)

    @property
    def well_formed(self) -> bool:
        return math.isfinite(self.value) and self.value >= 0

    @property
    def met(self) -> bool | None:
        """None for a context figure; else whether the value meets its goal."""
        if self.goal is None:
            return None
        return _OPERATORS[self.op](self.value, self.goal)

    @property
    def shown_value(self) -> str:
        return format_value(self.value) + self.unit

    @property
    def line(self) -> str:
        if self.goal is None:
            return f"bench: {self.name}={self.shown_value} (info)"
        return f"bench: {self.name}={self.shown_value} (goal {self.op} {format_value(self.goal)})"


def format_value(value: float) -> str:
    """Three significant digits, no exponent for the magnitudes benchmarks produce."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"
