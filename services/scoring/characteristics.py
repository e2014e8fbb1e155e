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

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["CategoricalCharacteristic", "Characteristic", "NumericCharacteristic", "category_of"]

Value = int | float | str | bool | None


def category_of(value: int | float | str | bool) -> str:
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

    @property
    def n_bins(self) -> int:
        return len(self.splits) + 1

    @property
    def special_bin(self) -> int:
        return self.n_bins

    @property
    def missing_bin(self) -> int:
        return self.n_bins + 1

    @property
    def best_points(self) -> float:
        return max(self.points[: self.n_bins])

    def locate(self, value: Value) -> int:
        if value is None:
            return self.missing_bin
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.special_bin
        if value != value:  # NaN, from callers outside the Applicant contract
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

    @property
    def n_bins(self) -> int:
        return len(self.points) - 2

    @property
    def special_bin(self) -> int:
        return self.n_bins

    @property
    def missing_bin(self) -> int:
        return self.n_bins + 1

    @property
    def best_points(self) -> float:
        return max(self.points[: self.n_bins])

    def locate(self, value: Value) -> int:
        if value is None:
            return self.missing_bin
        return self.bin_of.get(category_of(value), self.n_bins)


Characteristic = NumericCharacteristic | CategoricalCharacteristic
