"""`ScoreComputed`: the scorecard's verdict on an application (topic `credit.scores`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.applications import ApplicationFacts
from shared.contracts.envelope import ApplicationId, CustomerId, Event, Part

__all__ = ["Reason", "RecourseAction", "ScoreComputed"]


class Reason(Part):
    """A principal reason: a characteristic that cost points against its best bin."""

    code: str = Field(max_length=64, description="Stable reason code; its text lives in shared.reasons.", examples=["R_CHECKING"])
    characteristic: str = Field(max_length=64, description="The characteristic behind it.", examples=["checking_account"])
    points_lost: float = Field(ge=0, description="Points below the characteristic's best bin.", examples=[42.0])


class RecourseAction(Part):
    """A change the applicant can act on that, with the others listed, reaches the cut-off."""

    code: str = Field(max_length=64, description="Stable advice code; its text lives in shared.reasons.", examples=["A_SHORTER_DURATION"])
    characteristic: str = Field(max_length=64, examples=["duration_months"])
    current: str = Field(max_length=64, description="The applicant's current value or bin.", examples=["48"])
    target: str = Field(max_length=64, description="The value or bin to reach.", examples=["<= 24"])
    points_gain: float = Field(ge=0, description="Points this change adds.", examples=[18.5])


class ScoreComputed(Event):
    """The scoring service scored an application, or could not (outcome `unscorable`)."""

    EVENT_TYPE: ClassVar[str] = "ScoreComputed"

    application_id: ApplicationId
    customer_id: CustomerId
    facts: ApplicationFacts | None = Field(
        default=None, description="The application's facts; None only when the application could not be read."
    )
    outcome: Literal["scored", "unscorable"] = Field(description="`unscorable` closes the window as a system matter.")
    failure: str | None = Field(default=None, max_length=500, description="Why it could not be scored (no personal data).")
    model_id: str | None = Field(default=None, max_length=120, description="name@version+content hash of the scorecard.", examples=["german-woe@1+3f2a9c1b"])
    points: float | None = Field(default=None, description="Scorecard points (higher is better).", examples=[523.4])
    pd: float | None = Field(default=None, ge=0, le=1, description="Calibrated probability of default.", examples=[0.12])
    grade: str | None = Field(default=None, max_length=2, description="Risk grade by PD band, A (best) to G.", examples=["C"])
    reasons: tuple[Reason, ...] = Field(default=(), max_length=4, description="At most four principal reasons.")
    recourse: tuple[RecourseAction, ...] = Field(default=(), max_length=8, description="Smallest actionable set of changes reaching the cut-off.")
    recourse_target_points: float | None = Field(default=None, description="The cut-off the recourse aims at.")
