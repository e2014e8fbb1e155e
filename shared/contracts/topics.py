"""Every topic name, in one place, with what each one carries. A namespace prefix isolates test,
benchmark and shadow runs.

Trust is drawn at topics: a topic has one kind of writer (`CATALOGUE`, below).

- **request** topics are written by upstream apps (and by the operators' dead-letter replay):
  applications, lending requests, review requests;
- **result** topics are written by one service only: its answers (scores, decisions, lending and
  review results, notifications); rebuilds read results from these and nowhere else;
- **control** topics carry what operators sign: policy updates and actions on customers;
- the dead-letter topic holds what a service refused;
- **retired** topics are the mixed topics of before the split (`credit.drawdowns`, `credit.reviews`:
  requests and results together): nobody writes them; the migration reads them once as history
  (docs/operations.md, "Splitting requests from results").

An event type belongs on the topics that carry it: a consumer refuses (dead-letters) any other,
and the readers of the log decode each record only as what its topic carries (`Topics.events_on`).
Who may write and read each topic is the table beside this module (shared/contracts/principals.py).
A new topic is a property here, an entry in `CATALOGUE` and a row in that table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.contracts.applications import ApplicationReceived
from shared.contracts.deadletter import DeadLetter
from shared.contracts.drawdowns import LENDING_REQUESTS, LENDING_RESULTS
from shared.contracts.envelope import Event
from shared.contracts.loans import LOAN_EVENTS
from shared.contracts.notifications import NotificationSent
from shared.contracts.policy import KeyRetired, PolicyUpdated
from shared.contracts.reviews import OPERATOR_ACTIONS, REVIEW_RESULTS, ReviewRequested
from shared.contracts.scores import ScoreComputed
from shared.contracts.windows import DecisionDelayed, WindowClosed, WindowOpened

__all__ = ["CATALOGUE", "CONTROL", "DEADLETTER", "REQUEST", "RESULT", "RETIRED", "TopicKind", "TopicEntry", "Topics", "homes_of", "entry_of"]

TopicKind = Literal["request", "result", "control", "deadletter", "retired"]
REQUEST: TopicKind = "request"
RESULT: TopicKind = "result"
CONTROL: TopicKind = "control"
DEADLETTER: TopicKind = "deadletter"
RETIRED: TopicKind = "retired"


@dataclass(frozen=True, slots=True)
class TopicEntry:
    """One topic of the fleet: its property on `Topics`, its name without a namespace, its kind, the
    event types it carries, whether it is kept forever (a log the fleet is rebuilt from), and the
    other names an operator may call it by."""

    attribute: str
    base: str
    kind: TopicKind
    events: tuple[type[Event], ...]
    kept_forever: bool
    about: str
    aliases: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """Its name without `credit.` (`lending-requests`): what the operators' tools call it."""
        return self.base.removeprefix("credit.")

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(model.EVENT_TYPE for model in self.events)


# fmt: off
CATALOGUE: tuple[TopicEntry, ...] = (
    TopicEntry("applications", "credit.applications", REQUEST, (ApplicationReceived,), False,
              "applications for a borrowing window, from upstream apps"),
    TopicEntry("scores", "credit.scores", RESULT, (ScoreComputed,), True,
              "the scoring service's scores, kept as long as the decisions made on them"),
    TopicEntry("windows", "credit.windows", RESULT, (WindowOpened, WindowClosed, DecisionDelayed), True,
              "the policy service's decisions (and delay notices): the decision log, kept forever"),
    TopicEntry("notifications", "credit.notifications", RESULT, (NotificationSent,), True,
              "what the notification service told each customer"),
    TopicEntry("policy", "credit.policy", CONTROL, (PolicyUpdated, KeyRetired), True,
              "signed policy versions and retirements of operators' keys, from the operators"),
    TopicEntry("deadletter", "credit.deadletter", DEADLETTER, (DeadLetter,), False,
              "what a service refused, with why", aliases=("dlq",)),
    TopicEntry("lending_requests", "credit.lending-requests", REQUEST, LENDING_REQUESTS, False,
              "drawdown and repayment requests, from upstream apps"),
    TopicEntry("lending_results", "credit.lending-results", RESULT, LENDING_RESULTS, True,
              "the policy service's answers to drawdowns and repayments: the balances' log, kept forever"),
    TopicEntry("loans", "credit.loans", RESULT, LOAN_EVENTS, True,
              "the policy service's loans booked, due-date reminders, overdue steps and cures: the loans' log, kept forever"),
    TopicEntry("shadow_windows", "credit.windows.shadow", RESULT, (WindowOpened, WindowClosed), False,
              "a shadow policy's decisions, compared with the live ones", aliases=("shadow",)),
    TopicEntry("review_requests", "credit.review-requests", REQUEST, (ReviewRequested,), True,
              "requests for review by a person, from upstream apps: the customer's statement is part of the review's record"),
    TopicEntry("review_results", "credit.review-results", RESULT, REVIEW_RESULTS, True,
              "the policy service's acknowledgements and conclusions of reviews"),
    TopicEntry("operator_actions", "credit.operator-actions", CONTROL, OPERATOR_ACTIONS, True,
              "the operators' signed review decisions, suspensions and liftings"),
    TopicEntry("retired_drawdowns", "credit.drawdowns", RETIRED, (*LENDING_REQUESTS, *LENDING_RESULTS), True,
              "before the split: lending requests and results together (history, read once by the migration)"),
    TopicEntry("retired_reviews", "credit.reviews", RETIRED, (ReviewRequested, *REVIEW_RESULTS, *OPERATOR_ACTIONS), True,
              "before the split: review requests, results and operators' actions together (history, read once by the migration)"),
)
# fmt: on

_BY_BASE = {entry.base: entry for entry in CATALOGUE}


def entry_of(attribute: str) -> TopicEntry:
    """The catalogue's entry for a `Topics` property (`windows`)."""
    for entry in CATALOGUE:
        if entry.attribute == attribute:
            return entry
    raise KeyError(attribute)


def homes_of(event_type: str) -> list[str]:
    """The live topics (base names) an event type is written to."""
    return [s.base for s in CATALOGUE if s.kind != RETIRED and event_type in s.event_types]


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under an optional namespace (`""` in production: `credit.applications`)."""

    namespace: str = ""

    def _name(self, base: str) -> str:
        return f"{self.namespace}.{base}" if self.namespace else base

    @property
    def applications(self) -> str:
        return self._name("credit.applications")

    @property
    def scores(self) -> str:
        return self._name("credit.scores")

    @property
    def windows(self) -> str:
        return self._name("credit.windows")

    @property
    def notifications(self) -> str:
        return self._name("credit.notifications")

    @property
    def policy(self) -> str:
        return self._name("credit.policy")

    @property
    def deadletter(self) -> str:
        return self._name("credit.deadletter")

    @property
    def lending_requests(self) -> str:
        return self._name("credit.lending-requests")

    @property
    def lending_results(self) -> str:
        return self._name("credit.lending-results")

    @property
    def loans(self) -> str:
        return self._name("credit.loans")

    @property
    def review_requests(self) -> str:
        return self._name("credit.review-requests")

    @property
    def review_results(self) -> str:
        return self._name("credit.review-results")

    @property
    def operator_actions(self) -> str:
        return self._name("credit.operator-actions")

    @property
    def shadow_windows(self) -> str:
        return self._name("credit.windows.shadow")

    @property
    def retired_drawdowns(self) -> str:
        return self._name("credit.drawdowns")

    @property
    def retired_reviews(self) -> str:
        return self._name("credit.reviews")

    @property
    def topic_prefix(self) -> str:
        """What every fleet topic's name starts with (`credit.`, or `<namespace>.credit.`)."""
        return self._name("credit.")

    @property
    def group_prefix(self) -> str:
        """What every fleet consumer group's name starts with (`creditwindow.`)."""
        return self.group("")

    def all(self) -> tuple[str, ...]:
        """Every live topic (the retired ones are not created any more)."""
        return tuple(self._name(s.base) for s in CATALOGUE if s.kind != RETIRED)

    def of_kind(self, *kinds: TopicKind) -> tuple[str, ...]:
        return tuple(self._name(s.base) for s in CATALOGUE if s.kind in kinds)

    def entry(self, name: str) -> TopicEntry | None:
        """The catalogue's entry for a topic's full name in this namespace (None: not a topic of it)."""
        if self.namespace:
            if not name.startswith(f"{self.namespace}."):
                return None
            name = name.removeprefix(f"{self.namespace}.")
        return _BY_BASE.get(name)

    def events_on(self, name: str) -> tuple[type[Event], ...] | None:
        """The event types a topic (full name) carries; None when it is not a topic of this namespace."""
        entry = self.entry(name)
        return entry.events if entry is not None else None

    def group(self, service: str) -> str:
        """Consumer group of a service: one group per service, replicas share them."""
        return self._name(f"creditwindow.{service}")
