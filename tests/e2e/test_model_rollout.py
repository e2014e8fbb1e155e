"""Rolling out a new scorecard version: no application lost or scored twice, each decision names its model."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from devtools.fleet import Fleet
from devtools.germancredit import applications
from services.scoring.scorecard import DEFAULT_ARTIFACT, Scorecard
from shared.contracts import WindowClosed, WindowOpened
from tests.e2e.conftest import start_fleet


async def test_a_new_model_version_replaces_the_old_without_losing_or_doubling_a_decision(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    artifact = json.loads(DEFAULT_ARTIFACT.read_text())
    artifact["version"] = "2"
    v2_path = tmp_path / "german-woe-v2.json"
    v2_path.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n")
    v1, v2 = Scorecard.load(DEFAULT_ARTIFACT).model_id, Scorecard.load(v2_path).model_id
    assert v1 != v2

    running = await start_fleet(endpoints, namespace, log_root)  # scoring v1, policy, notification
    new_scoring = Fleet(
        env={**endpoints, "CW_TOPIC_NAMESPACE": namespace, "CW_MODEL_PATH": str(v2_path)},
        log_dir=log_root / namespace / "v2",
        services=("scoring",),
        instance_prefix="v2-",
    )
    topics = running.settings.topics
    batch = list(applications("rollout", count=600))
    try:
        await running.publish(topics.applications, batch[:200])
        new_scoring.start()  # v2 joins the group beside v1 ...
        await asyncio.to_thread(new_scoring.wait_ready)
        await running.publish(topics.applications, batch[200:400])
        running.fleet.kill("scoring-0", sig=15)  # ... and v1 leaves with a graceful stop
        await running.publish(topics.applications, batch[400:])

        def decisions(seen: list) -> list:  # type: ignore[type-arg]
            return [r.event for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))]

        seen = await running.read([topics.windows], lambda s: len(decisions(s)) >= 600, timeout_s=120, settle_s=2)
    finally:
        new_scoring.stop()
        running.fleet.stop()
    made = decisions(seen)
    assert Counter(d.application_id for d in made) == Counter({a.application_id: 1 for a in batch})
    models = Counter(d.model_id for d in made)
    assert set(models) == {v1, v2} and models[v1] >= 200 and models[v2] >= 200
