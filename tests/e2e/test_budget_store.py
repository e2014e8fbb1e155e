"""The Lua budget step on the real Redis gives the same answers as the pure budget rule."""

from __future__ import annotations

import random
import uuid

from redis.asyncio import Redis

from services.policy.budget import BudgetState, grant
from services.policy.decisions import propose
from services.policy.redis_limits import RedisLimits
from services.policy.rules import Offer
from tests.conftest import settings_for
from tests.unit.policy.factories import NOW, default_policy, score


async def test_lua_and_python_budget_rules_agree_on_a_random_stream(endpoints: dict[str, str]) -> None:
    settings = settings_for(endpoints, f"lua{uuid.uuid4().hex[:8]}")
    policy = default_policy(
        budgets__individual={"exposure": 400_000, "expected_loss": 15_000},
        budgets__small_business={"exposure": 150_000, "expected_loss": 8_000},
        programmes=[{"name": "sb_boost", "segment": "small_business", "boost": 1.5, "budget": 20_000}],
    )
    rng = random.Random(7)
    proposals = []
    for n in range(300):
        grade = rng.choice("ABCDE")
        pd = {"A": 0.03, "B": 0.07, "C": 0.12, "D": 0.18, "E": 0.26}[grade] + rng.uniform(-0.02, 0.02)
        s = score(
            grade=grade, pd=pd, income=rng.randrange(20_000, 400_000, 1_000), segment=rng.choice(["individual", "small_business"]),
            application_id=f"app_lua_{n:05d}", customer_id=f"cus_lua_{n:07d}",
        )  # fmt: skip
        proposals.append(propose(s, policy, NOW))
    redis = Redis.from_url(settings.redis_dsn)
    try:
        allocations = await RedisLimits(redis, settings.redis_prefix).allocate(proposals, policy)
    finally:
        await redis.aclose()

    states: dict[str, BudgetState] = {}
    compared = refused = 0
    for proposal, allocation in zip(proposals, allocations, strict=True):
        if not isinstance(proposal.verdict, Offer):
            assert allocation.granted == 0
            continue
        segment = proposal.score.facts.segment  # type: ignore[union-attr]
        state = states.get(segment, BudgetState())
        expected = grant(proposal.verdict, state, policy, segment)
        assert (allocation.granted, allocation.refusal, allocation.programme_part) == (expected.limit, expected.refusal, expected.programme_part)
        el_fen = allocation.expected_loss_fen
        states[segment] = BudgetState(
            state.reserved_exposure + expected.limit, state.reserved_el + el_fen / 100, state.programme_reserved + expected.programme_part
        )
        compared += 1
        refused += expected.refusal is not None
    assert compared > 100 and refused > 10  # the stream filled the budgets, so pacing and exhaustion were exercised


async def test_the_store_reloads_its_script_after_redis_lost_it(endpoints: dict[str, str]) -> None:
    settings = settings_for(endpoints, f"lua{uuid.uuid4().hex[:8]}")
    redis = Redis.from_url(settings.redis_dsn)
    try:
        store = RedisLimits(redis, settings.redis_prefix)
        await redis.script_flush()  # what a Redis restart without persistence of scripts looks like
        proposal = propose(score(application_id="app_reload_0001", customer_id="cus_reload_00001"), default_policy(), NOW)
        (allocation,) = await store.allocate([proposal], default_policy())
        assert allocation.fresh and allocation.granted > 0
    finally:
        await redis.aclose()
