"""Scoring's business metrics (Prometheus)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.scoring.drift import ScoreDistribution, population_stability
from shared.contracts import ScoreComputed

__all__ = ["ScoringMetrics"]


# PSI over the latest scores: enough for a stable estimate, recent enough to show a shift.
PSI_WINDOW = 2_000
PSI_MIN_SCORES = 200
PSI_EVERY_S = 1.0


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry, *, model_id: str = "-", reference: ScoreDistribution | None = None) -> None:
        self.model_id = model_id
        self.reference = reference
        self.recent: deque[float] = deque(maxlen=PSI_WINDOW)
        self._psi_at = 0.0
        self.scores = Counter(
            "creditwindow_scores_total", "Applications scored, by outcome and grade.", ["outcome", "grade", "model_id"], registry=registry
        )
        self.points = Histogram(
            "creditwindow_score_points", "Scorecard points of scored applications.", buckets=range(300, 801, 25), registry=registry
        )
        self.psi = Gauge(
            "creditwindow_score_psi", "Population stability index of live scores against training.", ["model_id"], registry=registry
        )

    def observe(self, scores: Sequence[ScoreComputed]) -> None:
        """Dead letters are counted by the outbox that publishes them."""
        for score in scores:
            self.scores.labels(score.outcome, score.grade or "-", score.model_id or "-").inc()
            if score.points is not None:
                self.points.observe(score.points)
                if score.model_id == self.model_id:
                    self.recent.append(score.points)
        now = time.monotonic()
        if self.reference is not None and len(self.recent) >= PSI_MIN_SCORES and now - self._psi_at >= PSI_EVERY_S:
            self._psi_at = now
            self.psi.labels(self.model_id).set(population_stability(self.recent, self.reference).psi)
