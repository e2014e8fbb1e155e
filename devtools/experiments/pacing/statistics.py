"""Statistics of the pacing experiment: spreads across shuffles and paired differences. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PairedDifference", "Spread", "paired"]


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean, standard deviation and the 5th-95th percentile band of a metric across shuffles."""

    mean: float
    std: float
    p5: float
    p95: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        data = sorted(values)
        if not data:
            raise ValueError("no values")
        std = statistics.stdev(data) if len(data) > 1 else 0.0
        return cls(statistics.fmean(data), std, _percentile(data, 0.05), _percentile(data, 0.95))


def _sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value, ties dropped: how surprising the wins are if neither rule is better."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """`b - a` on the same shuffles: mean ± 2 standard errors, and how often b came out ahead."""

    mean: float
    se: float
    p5: float
    p95: float
    wins: int  # shuffles where b > a
    losses: int  # shuffles where b < a
    n: int

    @property
    def low(self) -> float:
        return self.mean - 2 * self.se

    @property
    def high(self) -> float:
        return self.mean + 2 * self.se

    @property
    def win_share(self) -> float:
        return self.wins / self.n if self.n else 0.0

    @property
    def sign_test_p(self) -> float:
        return _sign_test(self.wins, self.losses)


def paired(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    if len(a) != len(b) or not a:
        raise ValueError("paired differences need two equally long, non-empty series")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    spread = Spread.of(diffs)
    se = spread.std / math.sqrt(len(diffs))
    return PairedDifference(
        mean=spread.mean,
        se=se,
        p5=spread.p5,
        p95=spread.p95,
        wins=sum(1 for d in diffs if d > 0),
        losses=sum(1 for d in diffs if d < 0),
        n=len(diffs),
    )

