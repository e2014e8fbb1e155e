"""Scoring's business metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.contracts import ScoreComputed
from shared.wire import RefusedRecord

__all__ = ["ScoringMetrics"]


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.scores = Counter(
            "creditwindow_scores_total", "Applications scored, by outcome and grade.", ["outcome", "grade", "model_id"], registry=registry
        )
        self.points = Histogram(
            "creditwindow_score_points", "Scorecard points of scored applications.", buckets=range(300, 801, 25), registry=registry
        )
        self.dead_letters = Counter(
            "creditwindow_dead_letters_total", "Records refused to the dead-letter topic.", ["source", "error_type"], registry=registry
        )
        self.psi = Gauge(
            "creditwindow_score_psi", "Population stability index of live scores against training.", ["model_id"], registry=registry
        )

    def observe(self, scores: Sequence[ScoreComputed], *, refused: Sequence[RefusedRecord]) -> None:
        for score in scores:
            self.scores.labels(score.outcome, score.grade or "-", score.model_id or "-").inc()
            if score.points is not None:
                self.points.observe(score.points)
        for record in refused:
            self.dead_letters.labels(record.record.topic, record.error_type).inc()
