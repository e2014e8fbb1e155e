"""At the end of a budget period (midnight in China time), the fleet does one thing everywhere.

The rules held here (docs/time.md):

- an application is charged to the budget period of its **application time** (when the fleet
  received it: its score's `occurred_at`), whenever and wherever it is decided: the live service,
  the shadow, `simulate`'s replay and a rebuild from the log all name the same period;
- a window gives its reservation back to the period it was charged to, when it is superseded,
  expires or is closed in the next period;
- pacing counts the share of the period gone by at the application time: 0 at the first second,
  with nothing reserved yet;
- scheduled pauses apply by the **decision time**, dated programmes by the application time, both
  from their start (included) to their end (excluded);
- a window valid until midnight is expired by the sweep at midnight, not a millisecond before;
- a spent budget tells the customer to try again when its period refills.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from creditwindow.replay import replay_scores
from services.policy.app import Policy, compose
from services.policy.record.rebuild import derive
from services.policy.shadow_app import compose_shadow
from services.policy.windows.adapters.memory_book import MemoryBook
from services.policy.windows.book import Book, required_margin
from services.policy.windows.decisions import book_request, budget_charge, charge_of, decision_event, propose
from services.policy.windows.model import DecisionRecord, Posting, Reserved
from services.policy.windows.rules import Offer, evaluate
from shared.clock import ManualClock
from shared.contracts import ScoreComputed, WindowClosed, WindowOpened
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import Captured, capture
from tests.unit.policy.factories import default_policy, score

MIDNIGHT = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00 in China time: a month's and a year's end
JUST_BEFORE = MIDNIGHT - timedelta(milliseconds=100)
JUST_AFTER = MIDNIGHT + timedelta(milliseconds=100)
DECEMBER, JANUARY = "individual/2026-12", "individual/2027-01"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class EmptyLiveBook:
    """The fleet's book as a shadow reads it, with nothing reserved."""

    async def budgets(self, keys: Sequence[str]) -> dict[str, Reserved]:
        return {}

    async def programmes(self, names: Sequence[str] = ()) -> dict[str, int]:
        return {}

    async def open_window(self, customer_id: str) -> DecisionRecord | None:
        return None


@dataclass
class Live:
    broker: KafkaBroker
    store: MemoryBook
    settings: Settings
    out: Captured
    policy: Policy

    async def send(self, *scores: ScoreComputed) -> None:
        await _send(self.broker, self.settings.topics.scores, scores)


def _live(clock: ManualClock, **changes: object) -> Live:
    settings = Settings(topic_namespace="h")
    broker, store = KafkaBroker(), MemoryBook()
    policy = compose(
        settings, broker=broker, store=store, publisher=Outbox(broker, service="policy", clock=clock_at(NOW)), registry=CollectorRegistry(),
        policy=default_policy(**changes), clock=clock,
    )  # fmt: skip
    return Live(broker, store, settings, capture(broker, settings.topics.windows), policy)


async def _send(broker: KafkaBroker, topic: str, scores: Sequence[ScoreComputed]) -> None:
    for s in scores:
        message = encode(s)
        await broker.publish(message.value, topic, key=message.key, headers=message.headers)


async def test_an_application_received_before_midnight_and_decided_after_is_charged_to_its_month_everywhere() -> None:
    late = score(application_id="app_end_000001", customer_id="cus_end_0000001", at=JUST_BEFORE)
    early = score(application_id="app_end_000002", customer_id="cus_end_0000002", at=JUST_AFTER)
    clock = ManualClock(JUST_AFTER + timedelta(seconds=1))  # both decided in January

    # live
    wired = _live(clock)
    async with TestKafkaBroker(wired.broker):
        await wired.send(late, early)
    store = wired.store
    live = {d.application_id: d for d in wired.out.of(WindowOpened)}
    assert (live[late.application_id].basis.budget_period, live[early.application_id].basis.budget_period) == ("2026-12", "2027-01")
    assert store.book.state.budgets[DECEMBER].exposure == live[late.application_id].limit
    assert store.book.state.budgets[JANUARY].exposure == live[early.application_id].limit

    # the shadow, a second later still
    clock.advance(seconds=1)
    shadow_settings = Settings(topic_namespace="hs")
    shadow_broker = KafkaBroker()
    shadow = compose_shadow(
        shadow_settings, candidate=default_policy(), broker=shadow_broker, live=EmptyLiveBook(),
        publisher=Outbox(shadow_broker, service="policy-shadow", clock=clock_at(NOW)), registry=CollectorRegistry(), clock=clock,
    )  # fmt: skip
    shadow_out = capture(shadow_broker, shadow_settings.topics.shadow_windows)
    async with TestKafkaBroker(shadow_broker):
        await _send(shadow_broker, shadow_settings.topics.scores, [late, early])
    shadowed = {d.application_id: d.basis.budget_period for d in shadow_out.of(WindowOpened)}
    assert shadowed == {late.application_id: "2026-12", early.application_id: "2027-01"}
    assert isinstance(shadow.store, MemoryBook)

    # simulate's replay: each application decided once on a book of its own, at the time it was scored
    assert [book_request(propose(s, default_policy(), s.occurred_at), default_policy())[0].budget for s in (late, early)] == [DECEMBER, JANUARY]
    assert [o.limit for o in replay_scores([late, early], default_policy())] == [live[s.application_id].limit for s in (late, early)]

    # a rebuild from the log reads the period each decision names
    rebuilt = derive(list(live.values()))
    assert {k: v.exposure for k, v in rebuilt.budgets.items() if v.exposure} == {
        DECEMBER: live[late.application_id].limit,
        JANUARY: live[early.application_id].limit,
    }


async def test_a_window_charged_to_the_last_day_gives_back_to_its_period_when_superseded_or_expired_in_the_next() -> None:
    clock = ManualClock(JUST_BEFORE)
    wired = _live(clock, timing__window_validity=timedelta(days=1))
    budgets = wired.store.book.state.budgets
    async with TestKafkaBroker(wired.broker):
        await wired.send(score(application_id="app_end_000003", customer_id="cus_end_0000003", at=JUST_BEFORE))
        await wired.send(score(application_id="app_end_000004", customer_id="cus_end_0000004", at=JUST_BEFORE))
        first, second = wired.out.of(WindowOpened)
        assert budgets[DECEMBER].exposure == first.limit + second.limit
        # the first customer applies again in January: the December window is superseded and released to December
        clock.set(JUST_AFTER)
        await wired.send(score(application_id="app_end_000005", customer_id="cus_end_0000003", at=JUST_AFTER))
        again = wired.out.of(WindowOpened)[-1]
        assert (budgets[DECEMBER].exposure, budgets[JANUARY].exposure) == (second.limit, again.limit)
        # the second's December window expires in January: released to December too
        clock.set(second.valid_until)
        closures = await wired.policy.underwriter.sweep()
    assert [(c.customer_id, c.reason) for c in closures if isinstance(c, WindowClosed)] == [("cus_end_0000004", "expired")]
    assert (budgets[DECEMBER].exposure, budgets[JANUARY].exposure) == (0, again.limit)


async def test_the_sweep_expires_a_window_valid_until_midnight_at_midnight_and_gives_back_to_its_month() -> None:
    validity = timedelta(days=30)
    opened_at = MIDNIGHT - validity  # 2026-12-02 00:00 China time: valid until 2027-01-01 00:00 exactly
    clock = ManualClock(opened_at)
    wired = _live(clock, timing__window_validity=validity)
    budgets = wired.store.book.state.budgets
    async with TestKafkaBroker(wired.broker):
        await wired.send(score(application_id="app_end_000006", customer_id="cus_end_0000006", at=opened_at))
        (opened,) = wired.out.of(WindowOpened)
        assert opened.valid_until == MIDNIGHT and budgets[DECEMBER].exposure == opened.limit
        clock.set(MIDNIGHT - timedelta(milliseconds=1))
        assert await wired.policy.underwriter.sweep() == []
        clock.set(MIDNIGHT)
        (expired,) = await wired.policy.underwriter.sweep()
    assert isinstance(expired, WindowClosed) and (expired.trigger, expired.reason) == ("expiry", "expired")
    assert expired.occurred_at == MIDNIGHT and expired.closes_decision_id == opened.decision_id
    assert budgets[DECEMBER].exposure == 0 and JANUARY not in budgets


def test_pacing_at_the_first_second_of_a_period_counts_nothing_gone_and_keeps_the_budget_for_what_is_to_come() -> None:
    demand = [{"margin": 0.0, "exposure": 90_000_000, "expected_loss": 3_000_000}, {"margin": 0.035, "exposure": 10_000_000, "expected_loss": 300_000}]
    policy = default_policy(pacing__demand={"individual": demand})
    charge = budget_charge(policy, "individual", MIDNIGHT)
    key, first = charge.key, charge.terms
    assert key == JANUARY and first.elapsed == 0.0 and first.pacing
    # Nothing reserved yet, but the forecast demand (90M) is three times the month's 30M: only the
    # better offers open from the first second.
    assert required_margin(first, Reserved()) == 0.035
    last = budget_charge(policy, "individual", MIDNIGHT - timedelta(milliseconds=1)).terms
    assert last.elapsed == 1.0 or math.isclose(last.elapsed, 1.0, abs_tol=1e-9)
    assert required_margin(last, Reserved()) == -math.inf  # nothing left to come: every offer opens
    # Through the book: an offer at the first second, with no arrival before it.
    book = Book()
    good = propose(score(grade="C", pd=0.08, points=560.0, at=MIDNIGHT), policy, MIDNIGHT)  # margin 0.0385
    poor = propose(score(application_id="app_end_000007", customer_id="cus_end_0000007", grade="A", pd=0.02, points=640.0, at=MIDNIGHT), policy, MIDNIGHT)  # 0.029
    assert isinstance(good.verdict, Offer) and isinstance(poor.verdict, Offer)
    assert good.verdict.margin >= 0.035 > poor.verdict.margin
    assert book.post(*book_request(good, policy)).granted > 0
    assert book.post(*book_request(poor, policy)).refusal == "budget_paced"


def test_a_scheduled_pause_starting_at_midnight_applies_from_midnight_by_the_decision_time() -> None:
    pause = {"regions": ["CN-SH"], "start": MIDNIGHT, "end": MIDNIGHT + timedelta(days=1)}
    policy = default_policy(pauses__scheduled=[pause])
    received = score(region="CN-SH", at=JUST_BEFORE)
    assert isinstance(evaluate(received, policy, MIDNIGHT - timedelta(milliseconds=1)), Offer)
    paused_now = evaluate(received, policy, MIDNIGHT)  # received before it, decided once it is in force
    assert not isinstance(paused_now, Offer) and paused_now.reason == "region_paused"
    end = MIDNIGHT + timedelta(days=1)
    assert not isinstance(evaluate(received, policy, end - timedelta(milliseconds=1)), Offer)
    assert isinstance(evaluate(received, policy, end), Offer)  # the end is not part of it


def test_a_dated_programme_ending_at_midnight_boosts_the_applications_received_before_it_by_their_time() -> None:
    programme = {"name": "year_end", "segment": "small_business", "boost": 1.2, "budget": 600_000, "end": MIDNIGHT}
    policy = default_policy(programmes=[programme])
    decided_after = MIDNIGHT + timedelta(seconds=5)

    def offer(received: datetime) -> Offer:
        verdict = evaluate(score(grade="D", pd=0.18, income=100_000, segment="small_business", at=received), policy, decided_after)
        assert isinstance(verdict, Offer)
        return verdict

    inside, outside = offer(MIDNIGHT - timedelta(milliseconds=1)), offer(MIDNIGHT)
    assert inside.programme == "year_end" and inside.limit > outside.limit
    assert outside.programme is None
    # ...and the programme's own budget is the one of the application's time too
    proposal = propose(score(grade="D", pd=0.18, income=100_000, segment="small_business", at=MIDNIGHT - timedelta(milliseconds=1)), policy, decided_after)
    charge = charge_of(proposal, policy)
    assert charge.key == "small_business/2026-12" and charge.terms.programme_budget == 600_000


def test_a_spent_budget_says_to_try_again_when_its_period_refills_and_a_paced_offer_after_the_usual_delay() -> None:
    policy = default_policy()
    spent = Posting(fresh=True, seq=1, granted=0, refusal="budget_exhausted", programme_part=0, available=0)
    paced = Posting(fresh=True, seq=1, granted=0, refusal="budget_paced", programme_part=0, available=0)
    received = score(at=JUST_BEFORE)

    def retry(allocation: Posting, decided: datetime) -> datetime | None:
        closed = decision_event(propose(received, policy, decided), allocation, policy, decided)
        assert isinstance(closed, WindowClosed)
        return closed.retry_after

    assert retry(spent, JUST_BEFORE) == MIDNIGHT  # December's budget refills at the turn of the month
    assert retry(paced, JUST_BEFORE) == JUST_BEFORE + policy.timing.strategy_retry
    # decided after the month turned (an outage): December is over, January's budget is there already
    assert retry(spent, JUST_AFTER) == JUST_AFTER + policy.timing.strategy_retry
