"""Replaying scores through a policy, and comparing two replays: pure, no broker, no Redis."""

from __future__ import annotations

from datetime import timedelta

from creditwindow.outcomes import Outcome, changes, summarise
from creditwindow.replay import replay_scores
from shared.contracts import ScoreComputed
from tests.unit.policy.factories import NOW, default_policy, score


def _score(n: int, *, minutes: int = 0, **kwargs: object) -> ScoreComputed:
    made = score(application_id=f"app_sim_{n:06d}", customer_id=kwargs.pop("customer_id", f"cus_sim_{n:09d}"), **kwargs)  # type: ignore[arg-type]
    return made.model_copy(update={"occurred_at": NOW + timedelta(minutes=minutes)})


def test_a_raised_cutoff_closes_the_weaker_application_as_credit() -> None:
    scores = [_score(1, points=600), _score(2, points=530, minutes=1)]
    before = replay_scores(scores, default_policy())
    after = replay_scores(scores, default_policy(cutoffs__individual=560))
    assert [o.opened for o in before] == [True, True]
    assert [o.opened for o in after] == [True, False]
    assert (after[1].category, after[1].reason) == ("credit", "score_below_cutoff")
    (changed,) = changes(before, after)
    assert changed.application_id == "app_sim_000002" and changed.after == "closed credit/score_below_cutoff"
    assert changed.limit_delta == -before[1].limit


def test_a_budget_fills_in_the_order_applications_were_scored() -> None:
    policy = default_policy(budgets__individual={"exposure": 50_000, "expected_loss": 1_000_000}, pacing__enabled=False)
    scores = [_score(n, minutes=n, income=120_000) for n in range(1, 4)]  # each offered 40,000 (a third of income)
    outcomes = replay_scores(list(reversed(scores)), policy)
    by_app = {o.application_id: o for o in outcomes}
    assert by_app["app_sim_000001"].limit == 40_000
    assert by_app["app_sim_000002"].limit == 10_000 and by_app["app_sim_000002"].reason == "segment_budget"
    assert not by_app["app_sim_000003"].opened and by_app["app_sim_000003"].reason == "budget_exhausted"


def test_a_customers_new_window_releases_the_previous_one() -> None:
    policy = default_policy(budgets__individual={"exposure": 40_000, "expected_loss": 1_000_000}, pacing__enabled=False)
    first = _score(1, customer_id="cus_sim_again01", income=120_000)
    again = _score(2, customer_id="cus_sim_again01", income=120_000, minutes=1)
    other = _score(3, income=120_000, minutes=2)
    outcomes = replay_scores([first, again, other], policy)
    # the second application is granted while the first still counts (nothing left), then the first is released
    assert [o.opened for o in outcomes] == [True, False, True]


def test_an_expired_window_gives_its_budget_back() -> None:
    policy = default_policy(budgets__individual={"exposure": 40_000, "expected_loss": 1_000_000}, pacing__enabled=False, timing__window_validity="PT1H")
    outcomes = replay_scores([_score(1, income=120_000), _score(2, income=120_000, minutes=30), _score(3, income=120_000, minutes=61)], policy)
    assert [o.opened for o in outcomes] == [True, False, True]


def test_a_redelivered_score_is_decided_once() -> None:
    one = _score(1)
    assert len(replay_scores([one, one], default_policy())) == 1


def test_summaries_count_approvals_limits_and_expected_loss_by_segment() -> None:
    outcomes = [
        Outcome("a1", "c1", "individual", True, 10_000, 180.0, None, "risk_grade"),
        Outcome("a2", "c2", "individual", False, 0, 0.0, "credit", "score_below_cutoff"),
        Outcome("a3", "c3", "small_business", True, 5_000, 90.5, None, "income_cap"),
    ]
    summary = summarise(outcomes)
    assert summary["individual"].approval_rate == 0.5
    assert summary["individual"].total_limit == 10_000
    assert summary["all"].applications == 3 and summary["all"].expected_loss == 270.5
    assert list(summary) == ["individual", "small_business", "all"]


def test_the_same_decision_under_both_policies_is_no_change() -> None:
    scores = [_score(1), _score(2, points=400, minutes=1)]
    assert changes(replay_scores(scores, default_policy()), replay_scores(scores, default_policy())) == []
