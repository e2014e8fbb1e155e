"""A scorecard characteristic's bins as lookup tables: which bin a value falls in, and its points.

Pure standard library. Bins are numbered ``0 .. n-1`` for the regular bins, then ``n`` for the
special bin and ``n + 1`` for the missing bin, the order optbinning uses in its binning tables.

- A numeric value falls in bin ``i`` when ``splits[i-1] <= value < splits[i]`` (``bisect_right``),
  the convention of optbinning's ``np.digitize(x, splits, right=False)``.
- A categorical value is looked up in a dict; a category the training data never showed goes to
  the special bin.
- A missing value (``None``) goes to the missing bin.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CategoricalCharacteristic", "Characteristic", "NumericCharacteristic", "category_of"]

Value = int | float | str | bool | None


def category_of(value: float | str | bool) -> str:
    """The category code of a value: booleans are ``yes``/``no`` (how the telephone flag was trained)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass(frozen=True, slots=True)
class NumericCharacteristic:
    """A numeric characteristic: ascending split points and the points of each bin."""

    name: str
    splits: tuple[float, ...]
    points: tuple[float, ...]
    kind: Literal["numeric"] = "numeric"
    n_bins: int = field(init=False)
    special_bin: int = field(init=False)
    missing_bin: int = field(init=False)
    best_points: float = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.splits) + 1
        if len(self.points) != n + 2:
            raise ValueError(f"{self.name}: {len(self.points)} points for {n} bins plus special and missing")
        _derive(self, n)

    def locate(self, value: Value) -> int:
        if value is None:
            return self.missing_bin
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.special_bin
        if math.isnan(value):  # from callers outside the Applicant contract
            return self.missing_bin
        return bisect_right(self.splits, value)

    def bounds(self, index: int) -> tuple[float | None, float | None]:
        """The regular bin's ``[lower, upper)`` bounds; None for an open end."""
        lower = self.splits[index - 1] if index > 0 else None
        upper = self.splits[index] if index < len(self.splits) else None
        return lower, upper


@dataclass(frozen=True, slots=True)
class CategoricalCharacteristic:
    """A categorical characteristic: category groups and the points of each group."""

    name: str
    bin_of: Mapping[str, int]
    points: tuple[float, ...]
    kind: Literal["categorical"] = "categorical"
    n_bins: int = field(init=False)
    special_bin: int = field(init=False)
    missing_bin: int = field(init=False)
    best_points: float = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.points) - 2
        if n < 1 or any(not 0 <= i < n for i in self.bin_of.values()):
            raise ValueError(f"{self.name}: categories must map to the {n} regular bins")
        _derive(self, n)

    def locate(self, value: Value) -> int:
        if value is None:
            return self.missing_bin
        return self.bin_of.get(category_of(value), self.n_bins)


Characteristic = NumericCharacteristic | CategoricalCharacteristic


def _derive(table: Characteristic, n_bins: int) -> None:
    # Frozen dataclasses: the derived look-up values are set once, here.
    object.__setattr__(table, "n_bins", n_bins)
    object.__setattr__(table, "special_bin", n_bins)
    object.__setattr__(table, "missing_bin", n_bins + 1)
    object.__setattr__(table, "best_points", max(table.points[:n_bins]))
