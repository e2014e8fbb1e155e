"""Event contracts shared by every service: pydantic v2 models, JSON on the wire."""

from shared.contracts.applications import (
    SEGMENTS,
    Applicant,
    ApplicationFacts,
    ApplicationReceived,
    BureauSignals,
    Locale,
    Segment,
)
from shared.contracts.deadletter import DeadLetter
from shared.contracts.drawdowns import (
    DrawdownApproved,
    DrawdownOutcome,
    DrawdownRefused,
    DrawdownRequested,
    Repaid,
    RepaymentApplied,
)
from shared.contracts.envelope import ApplicationId, CustomerId, Event, deterministic_id, utc_now
from shared.contracts.notifications import NotificationSent
from shared.contracts.policy import PolicyUpdated
from shared.contracts.scores import Reason, RecourseAction, ScoreComputed
from shared.contracts.topics import Topics
from shared.contracts.windows import Category, Decision, LimitBasis, Trigger, WindowClosed, WindowOpened

EVENT_TYPES: dict[str, type[Event]] = {
    model.EVENT_TYPE: model
    for model in (
        ApplicationReceived,
        ScoreComputed,
        WindowOpened,
        WindowClosed,
        NotificationSent,
        DeadLetter,
        PolicyUpdated,
        DrawdownRequested,
        DrawdownApproved,
        DrawdownRefused,
        Repaid,
        RepaymentApplied,
    )
}

__all__ = [
    "EVENT_TYPES",
    "Applicant",
    "ApplicationFacts",
    "ApplicationId",
    "ApplicationReceived",
    "BureauSignals",
    "Category",
    "CustomerId",
    "DeadLetter",
    "Decision",
    "DrawdownApproved",
    "DrawdownOutcome",
    "DrawdownRefused",
    "DrawdownRequested",
    "Event",
    "LimitBasis",
    "Locale",
    "NotificationSent",
    "PolicyUpdated",
    "Reason",
    "RecourseAction",
    "Repaid",
    "RepaymentApplied",
    "SEGMENTS",
    "ScoreComputed",
    "Segment",
    "Topics",
    "Trigger",
    "WindowClosed",
    "WindowOpened",
    "deterministic_id",
    "utc_now",
]
