"""The scoring service's domain: the scorecard runtime, recourse and score drift (all pure).

Training, evaluation and the benchmark live in the `modelling` package (the `model` extra).
"""

from services.scoring.drift import ScoreDistribution, Stability, population_stability
from services.scoring.ports import ScoreResult
from services.scoring.recourse import LEVERS, Change, plan
from services.scoring.scorecard import DEFAULT_ARTIFACT, InvalidArtifact, Scorecard

__all__ = [
    "DEFAULT_ARTIFACT",
    "LEVERS",
    "Change",
    "InvalidArtifact",
    "ScoreDistribution",
    "ScoreResult",
    "Scorecard",
    "Stability",
    "plan",
    "population_stability",
]
