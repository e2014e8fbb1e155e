"""Joining shadow and live decisions by application: pure."""

from __future__ import annotations

from creditwindow.outcomes import compare
from services.policy.windows.decisions import decision_event, propose
from services.policy.windows.model import Posting
from shared.contracts import Decision
from tests.unit.policy.factories import NOW, default_policy, score


def _decision(n: int, *, points: float = 600, granted: int = 20_000, policy_version: int = 1, trigger: str = "application") -> Decision:
    policy = default_policy(version=policy_version)
    proposal = propose(score(application_id=f"app_shd_{n:06d}", customer_id=f"cus_shd_{n:09d}", points=points), policy, NOW, trigger)  # type: ignore[arg-type]
    return decision_event(proposal, Posting(fresh=True, seq=1, granted=granted, refusal=None, programme_part=0, available=1_000_000), policy, NOW)


def test_agreement_counts_same_outcome_and_limit_by_application() -> None:
    live = [_decision(1), _decision(2), _decision(3, points=400)]
    shadow = [_decision(1, policy_version=2), _decision(2, granted=15_000, policy_version=2), _decision(3, points=400, policy_version=2)]
    report = compare(live, shadow)
    assert (report.joined, report.agreed) == (3, 2)
    assert report.agreement_rate == 2 / 3
    (difference,) = report.differences
    assert difference.customer_id == "cus_shd_000000002" and difference.limit_delta == -5_000


def test_by_segment_opened_closed_and_limits_are_side_by_side() -> None:
    live = [_decision(1), _decision(2)]
    shadow = [_decision(1), _decision(2, points=400)]
    report = compare(live, shadow)
    assert report.live["individual"].opened == 2 and report.shadow["individual"].opened == 1
    assert report.live["all"].total_limit == 40_000 and report.shadow["all"].total_limit == 20_000
    assert report.differences[0].after.startswith("closed credit/")


def test_applications_only_one_side_decided_are_counted_apart() -> None:
    report = compare([_decision(1), _decision(2)], [_decision(2), _decision(3)])
    assert (report.joined, report.live_only, report.shadow_only) == (1, 1, 1)


def test_lifecycle_closures_and_duplicates_do_not_count_as_applications() -> None:
    first = _decision(1)
    redecided = _decision(1, trigger="redecision")
    report = compare([first, first, redecided], [first])
    assert (report.joined, report.agreed, report.live_only) == (1, 1, 0)


def test_no_shadow_decisions_means_nothing_joined() -> None:
    report = compare([_decision(1)], [])
    assert report.joined == 0 and report.agreement_rate == 0.0
