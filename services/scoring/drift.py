"""Population stability of live scores against the training score distribution. Pure.

The artifact stores the training scores' distribution as ascending bin edges (score deciles of
the 1,000 training rows) and the share of training rows in each bin. A score falls in bin
``bisect_right(edges, score)``, so bin ``i`` is ``edges[i-1] <= score < edges[i]``.

    PSI = sum over bins of (live_share - train_share) * ln(live_share / train_share)

An empty bin would make the logarithm infinite; shares are floored at `SHARE_FLOOR` first (a
common convention, and the reason a PSI is not exactly zero on identical but small samples).
Reading by the usual rule of thumb: below 0.10 stable, 0.10 to 0.25 a moderate shift worth a
look, above 0.25 a significant shift (re-check the model).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SHARE_FLOOR", "ScoreDistribution", "Stability", "population_stability"]

SHARE_FLOOR = 1e-4
MODERATE = 0.10
SIGNIFICANT = 0.25

Verdict = Literal["stable", "moderate_shift", "significant_shift"]


@dataclass(frozen=True, slots=True)
class ScoreDistribution:
    """A score distribution as bins: `edges` ascending, `shares` one per bin (len(edges) + 1)."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.edges) + 1:
            raise ValueError("shares must have one more entry than edges")
        if any(not math.isfinite(e) for e in self.edges) or any(a >= b for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError("edges must be finite and strictly ascending")
        if any(not (0.0 <= s <= 1.0) for s in self.shares) or abs(sum(self.shares) - 1.0) > 1e-6:
            raise ValueError("shares must be in [0, 1] and add up to 1")

    @classmethod
    def from_artifact(cls, data: Mapping[str, Any]) -> ScoreDistribution:
        edges, shares = data.get("edges"), data.get("shares")
        if not isinstance(edges, list) or not isinstance(shares, list):
            raise TypeError("edges and shares must be lists")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (*edges, *shares)):
            raise TypeError("edges and shares must be numbers")
        return cls(edges=tuple(float(e) for e in edges), shares=tuple(float(s) for s in shares))

    @classmethod
    def of(cls, scores: Iterable[float], edges: Iterable[float]) -> ScoreDistribution:
        """The distribution of `scores` over the bins that `edges` define."""
        edges = tuple(edges)
        counts = _counts(scores, edges)
        n = sum(counts)
        if n == 0:
            raise ValueError("no scores")
        return cls(edges=edges, shares=tuple(c / n for c in counts))


@dataclass(frozen=True, slots=True)
class Stability:
    """A PSI and what went into it."""

    psi: float
    n: int
    expected: tuple[float, ...]
    actual: tuple[float, ...]
    contributions: tuple[float, ...]

    @property
    def verdict(self) -> Verdict:
        if self.psi < MODERATE:
            return "stable"
        if self.psi < SIGNIFICANT:
            return "moderate_shift"
        return "significant_shift"


def _counts(scores: Iterable[float], edges: tuple[float, ...]) -> list[int]:
    counts = [0] * (len(edges) + 1)
    for score in scores:
        if not math.isfinite(score):
            raise ValueError(f"a score must be a finite number, got {score!r}")
        counts[bisect_right(edges, score)] += 1
    return counts


def population_stability(scores: Iterable[float], reference: ScoreDistribution) -> Stability:
    """PSI of live `scores` against the `reference` (training) distribution."""
    counts = _counts(scores, reference.edges)
    n = sum(counts)
    if n == 0:
        raise ValueError("no scores to compare")
    actual = tuple(c / n for c in counts)
    contributions = []
    for expected_share, actual_share in zip(reference.shares, actual):
        e = max(expected_share, SHARE_FLOOR)
        a = max(actual_share, SHARE_FLOOR)
        contributions.append((a - e) * math.log(a / e))
    return Stability(
        psi=sum(contributions),
        n=n,
        expected=reference.shares,
        actual=actual,
        contributions=tuple(contributions),
    )
