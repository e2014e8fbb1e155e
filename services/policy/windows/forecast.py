"""The period's expected demand, forecast from the offers of an earlier period: the curve pacing reads. Pure.

Pacing (`book.required_margin`) asks, at each decision, which margin the offers still to come must
earn for their demand to fit what is left of the budget. It reads a curve per segment: for a grid
of margins m, the exposure and expected loss of the offers earning at least m (`DemandPoint`).
This module builds that curve from the offers the rules made in an earlier period (or in recorded
scores), never from the arrivals being decided.

- **Grid**: the offers' margins, rounded down to `MARGIN_STEP`; when there are more distinct ones
  than `points`, the margins at evenly spaced ranks (quantiles by count), always starting with the
  smallest, so the first point is the whole demand (pacing reads it as "everything fits: no pacing").
- **Demand at m**: the sum of the limits (exposure, CNY) and of limit x PD x LGD (expected loss, CNY)
  of the offers with margin >= m, times `scale` (e.g. the budget period's length over the
  sample's), rounded to whole CNY. Margins ascend strictly and demand never grows with the margin,
  as `document.Pacing` requires.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from services.policy.control.document import DemandPoint

__all__ = ["MARGIN_STEP", "OfferedDemand", "demand_by_segment", "demand_curve", "total_demand"]

MARGIN_STEP = 1e-6
# One offer as the curve sees it: (margin, limit CNY, expected loss CNY).
OfferedDemand = tuple[float, int, float]


def _grid_margin(margin: float) -> float:
    """The margin rounded down to the grid step, within the bounds a `DemandPoint` accepts."""
    return min(1.0, max(-1.0, round(math.floor(margin / MARGIN_STEP + 1e-9) * MARGIN_STEP, 6)))


def demand_curve(offers: Iterable[OfferedDemand], *, points: int = 24, scale: float = 1.0) -> tuple[DemandPoint, ...]:
    """The demand curve of one segment's offers: at most `points` margins, ascending; () without offers."""
    if points < 1:
        raise ValueError("a demand curve needs at least one point")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale}")
    ranked = sorted((_grid_margin(margin), limit, loss) for margin, limit, loss in offers)
    if not ranked:
        return ()
    margins = [margin for margin, _, _ in ranked]
    distinct = sorted(set(margins))
    if len(distinct) > points:
        distinct = sorted({margins[(k * len(margins)) // points] for k in range(points)})
    # Sums from the top: demand at a margin = everything at or above it.
    curve = []
    exposure, loss = 0.0, 0.0
    grid = list(reversed(distinct))
    at = len(ranked)
    for margin in grid:
        while at > 0 and ranked[at - 1][0] >= margin:
            at -= 1
            exposure += ranked[at][1]
            loss += ranked[at][2]
        curve.append(DemandPoint(margin=margin, exposure=round(exposure * scale), expected_loss=round(loss * scale)))
    return tuple(reversed(curve))


def demand_by_segment(
    offers: Iterable[tuple[str, float, int, float]], *, points: int = 24, scale: float = 1.0
) -> dict[str, tuple[DemandPoint, ...]]:
    """One curve per segment from (segment, margin, limit, expected loss) offers; segments without offers are left out."""
    grouped: dict[str, list[OfferedDemand]] = {}
    for segment, margin, limit, loss in offers:
        grouped.setdefault(segment, []).append((margin, limit, loss))
    return {segment: demand_curve(found, points=points, scale=scale) for segment, found in sorted(grouped.items())}


def total_demand(curves: Mapping[str, tuple[DemandPoint, ...]]) -> dict[str, tuple[int, int]]:
    """Per segment, the whole demand of a curve (its first point): (exposure, expected loss)."""
    return {segment: (curve[0].exposure, curve[0].expected_loss) for segment, curve in curves.items() if curve}
