"""Gathering what explains a decision, for `creditwindow explain` and `review show`.

The decision is found through the index of references in Redis (as the policy service finds it);
a reference the index does not know (a decision older than the index, an index lost with Redis and
not rebuilt yet) is looked for in the whole of `credit.windows`. The policy version comes from
`credit.policy` (every signed version the fleet applied) or the shipped default; the model from
the scorecard artifacts at hand (`CW_MODEL_PATH` and `services/scoring/models/`); a suspension in
force when the decision was made, from `credit.reviews`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from redis.asyncio import Redis

from creditwindow.operator_ops import read_reviews
from creditwindow.policy_ops import policy_versions
from services.policy.care.desk import CustomerDesk
from services.policy.control.checks import check_action
from services.policy.record.adapters.kafka_archive import KafkaArchive
from services.policy.record.adapters.redis_references import RedisReferences
from services.policy.record.explanation import Explanation, PointsModel, explain, verify
from services.policy.windows.ports import Suspension
from services.scoring.scorecard import InvalidArtifact, Scorecard
from shared.contracts import CustomerSuspended, Decision, SuspensionLifted
from shared.messaging.topic_io import read_to_end
from shared.references import normalise_reference, reference_of
from shared.settings import REPO_ROOT, Settings

__all__ = ["find_decision", "gather", "model_for", "suspension_at"]


async def find_decision(settings: Settings, archive: KafkaArchive, reference: str) -> Decision | None:
    """The decision of a reference: through the index, else by reading the decision log."""
    found = await archive.decision(reference)
    if found is not None:
        return found
    for item in await read_to_end(settings, [settings.topics.windows]):
        if isinstance(item.event, Decision) and reference_of(item.event.decision_id) == reference:
            return item.event
    return None


def model_for(model_id: str | None, settings: Settings) -> PointsModel | None:
    """The scorecard whose id is `model_id`, if its artifact is at hand."""
    if not model_id:
        return None
    candidates = [settings.model_path, *sorted((REPO_ROOT / "services" / "scoring" / "models").glob("*.json"))]
    for path in dict.fromkeys(candidates):
        try:
            card = Scorecard.load(path)
        except (OSError, InvalidArtifact, ValueError):
            continue
        if card.model_id == model_id:
            return card
    return None


async def suspension_at(settings: Settings, customer_id: str, moment: datetime) -> Suspension | None:
    """The customer's suspension in force at `moment`, from the verified actions issued before it."""
    desk = CustomerDesk()
    ring, namespace = settings.policy_key_ring, settings.topic_namespace
    skew = timedelta(seconds=settings.policy_max_clock_skew_s)
    now = settings.clock().now()
    for event in await read_reviews(settings):
        if not isinstance(event, (CustomerSuspended, SuspensionLifted)) or event.customer_id != customer_id or event.issued_at > moment:
            continue
        if check_action(event, ring=ring, namespace=namespace, now=now, max_skew=skew) is not None:
            continue
        if isinstance(event, CustomerSuspended):
            desk.suspend(event)
        else:
            desk.lift(event)
    return desk.suspension(customer_id, moment)


async def gather(settings: Settings, text: str, *, check: bool) -> Explanation | None:
    """The explanation of the decision `text` names (a reference or a decision id), verified if `check`."""
    reference = normalise_reference(text)
    if reference is None:
        return None
    redis = Redis.from_url(settings.redis_dsn, socket_connect_timeout=3)
    try:
        archive = KafkaArchive(settings, RedisReferences(redis, settings.redis_prefix, settings.clock()))
        decision = await find_decision(settings, archive, reference)
        if decision is None:
            return None
        score = await archive.score(decision)
        messages = await archive.notices(decision)
    finally:
        await redis.aclose()
    policy = (await policy_versions(settings)).get(decision.policy_version)
    explanation = explain(decision, score, policy, messages, operator=True)
    if check:
        suspension = await suspension_at(settings, decision.customer_id, decision.occurred_at)
        explanation.verification = verify(decision, score, policy, suspension=suspension, model=model_for(decision.model_id, settings))
    return explanation
