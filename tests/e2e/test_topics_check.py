"""An existing topic is not trusted: `creditwindow topics check` (and every service start) says how
it differs from the settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.messaging import aiokafka_kwargs, check_topics, ensure_topics
from tests.conftest import settings_for


def _check(env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "creditwindow", "topics", "check", "--json"], env=env, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout


async def test_topics_as_created_pass_and_a_changed_or_wrongly_made_topic_is_named(endpoints: dict[str, str], namespace: str) -> None:
    settings = settings_for(endpoints, namespace)
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        # One topic made by hand before the fleet: two partitions, a short retention.
        configs = {"retention.ms": "3600000", "min.insync.replicas": str(settings.min_insync_replicas)}
        await admin.create_topics([NewTopic(settings.topics.scores, 2, settings.topic_replication_factor, topic_configs=configs)])
        await ensure_topics(settings)  # creates the others, leaves that one (and logs how it differs)
        found = {(d.topic, d.what): (d.found, d.wanted) for d in await check_topics(settings)}
        assert found == {
            (settings.topics.scores, "partitions"): ("2", str(settings.topic_partitions)),
            (settings.topics.scores, "retention.ms"): ("3600000", "-1"),  # kept as long as the decisions it explains
        }
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topics.windows, {"retention.ms": "86400000"})])
    finally:
        await admin.close()
    env = {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace}
    code, out = _check(env)
    differences = {(d["topic"], d["what"]) for d in json.loads(out)}
    assert code == 1 and (settings.topics.windows, "retention.ms") in differences  # kept forever, not a day
    code, out = _check({**env, "CW_TOPIC_REPLICATION_FACTOR": str(settings.topic_replication_factor + 1)})
    assert code == 1 and all((t, "replication_factor") in {(d["topic"], d["what"]) for d in json.loads(out)} for t in settings.topics.all())
