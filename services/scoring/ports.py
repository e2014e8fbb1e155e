"""What the scoring logic needs from outside, and the values that cross: one module.

The logic (`assessment.py`) scores with whatever `Scorer` it is given (the artifact-backed
`Scorecard` in production, none when the model cannot be loaded) and publishes through an
`EventPublisher` (the Kafka outbox in production, the in-memory broker in handler tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.contracts import Applicant, Reason, RecourseAction
from shared.ports import EventPublisher

__all__ = ["EventPublisher", "ScoreResult", "Scorer"]


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The scorecard's verdict on one applicant for one segment."""

    points: float
    pd: float
    grade: str
    reasons: tuple[Reason, ...]
    recourse: tuple[RecourseAction, ...]
    recourse_target_points: float | None


class Scorer(Protocol):
    """A scorecard: characteristics in, points/PD/grade/reasons/recourse out."""

    model_id: str

    def score(self, applicant: Applicant, segment: str) -> ScoreResult: ...
