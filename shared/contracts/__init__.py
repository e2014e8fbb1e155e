"""Event contracts shared by every service: pydantic v2 models, JSON on the wire."""

from shared.contracts.applications import (
    DEFAULT_LOCALE,
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
    LendingOutcome,
    Repaid,
    RepaymentApplied,
)
from shared.contracts.envelope import ApplicationId, CustomerId, Event, FreeText, deterministic_id
from shared.contracts.notifications import NotificationSent
from shared.contracts.policy import PolicyUpdated
from shared.contracts.reviews import (
    OPERATOR_ACTIONS,
    SUSPENSION_REASONS,
    CustomerSuspended,
    OperatorAction,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewOutcome,
    ReviewRequested,
    SuspensionLifted,
    SuspensionReason,
)
from shared.contracts.scores import Reason, RecourseAction, ScoreComputed
from shared.contracts.topics import Topics
from shared.contracts.windows import (
    Category,
    Decision,
    DecisionDelayed,
    LimitBasis,
    RuleThreshold,
    Trigger,
    WindowClosed,
    WindowOpened,
)

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
        DecisionDelayed,
        ReviewRequested,
        ReviewOpened,
        ReviewDecided,
        ReviewConcluded,
        CustomerSuspended,
        SuspensionLifted,
    )
}
# What `credit.reviews` carries, in the order a review goes.
REVIEW_EVENTS: tuple[type[Event], ...] = (
    ReviewRequested,
    ReviewOpened,
    ReviewDecided,
    ReviewConcluded,
    CustomerSuspended,
    SuspensionLifted,
)

__all__ = [
    "DEFAULT_LOCALE",
    "EVENT_TYPES",
    "OPERATOR_ACTIONS",
    "REVIEW_EVENTS",
    "SUSPENSION_REASONS",
    "Applicant",
    "ApplicationFacts",
    "ApplicationId",
    "ApplicationReceived",
    "BureauSignals",
    "Category",
    "CustomerId",
    "CustomerSuspended",
    "DeadLetter",
    "Decision",
    "DecisionDelayed",
    "DrawdownApproved",
    "DrawdownOutcome",
    "DrawdownRefused",
    "DrawdownRequested",
    "LendingOutcome",
    "Event",
    "FreeText",
    "LimitBasis",
    "Locale",
    "NotificationSent",
    "OperatorAction",
    "PolicyUpdated",
    "Reason",
    "RecourseAction",
    "Repaid",
    "RepaymentApplied",
    "ReviewConcluded",
    "ReviewDecided",
    "ReviewOpened",
    "ReviewOutcome",
    "ReviewRequested",
    "RuleThreshold",
    "SEGMENTS",
    "ScoreComputed",
    "Segment",
    "SuspensionLifted",
    "SuspensionReason",
    "Topics",
    "Trigger",
    "WindowClosed",
    "WindowOpened",
    "deterministic_id",
]
