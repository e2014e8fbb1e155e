"""Settings for a cluster: Sentinels, WAIT for replicas, min.insync.replicas, and what topics should be."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.messaging.topic_admin import TopicDifference, fleet_topics
from shared.settings import Settings


def test_sentinels_are_read_comma_separated_or_as_json_and_shown_without_a_password() -> None:
    settings = Settings(redis_sentinels="10.0.0.1:26379, 10.0.0.2:26379", redis_url="redis://:s3cret@ignored:6379/2")
    assert settings.sentinel_addresses == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert settings.redis_where == "sentinel creditwindow@10.0.0.1:26379,10.0.0.2:26379"
    assert "s3cret" not in settings.redis_where
    assert Settings(redis_sentinels='["a:1", "b:2"]').redis_sentinels == ("a:1", "b:2")


def test_a_sentinel_without_a_port_is_refused() -> None:
    with pytest.raises(ValidationError, match="host:port"):
        Settings(redis_sentinels="10.0.0.1")


def test_without_sentinels_redis_is_where_its_url_says() -> None:
    assert Settings(redis_url="redis://:pw@cache:6379/0").redis_where == "redis://:***@cache:6379/0"


def test_min_insync_replicas_follows_the_replication_factor_unless_set() -> None:
    assert Settings().min_insync_replicas == 1
    assert Settings(topic_replication_factor=3).min_insync_replicas == 2
    assert Settings(topic_replication_factor=3, topic_min_insync_replicas=3).min_insync_replicas == 3
    with pytest.raises(ValidationError, match="cannot exceed"):
        Settings(topic_replication_factor=2, topic_min_insync_replicas=3)


def test_every_topic_is_wanted_replicated_with_unclean_election_off() -> None:
    specs = fleet_topics(Settings(topic_replication_factor=3, topic_namespace="ns"))
    assert {s.name for s in specs} >= {"ns.credit.windows", "ns.credit.scores", "ns.credit.policy"}
    for spec in specs:
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"
        assert spec.configs["unclean.leader.election.enable"] == "false"
        assert spec.configs["cleanup.policy"] == "delete"
    kept = {s.name: s.configs["retention.ms"] for s in specs}
    assert kept["ns.credit.windows"] == kept["ns.credit.policy"] == "-1"
    assert next(s for s in specs if s.name == "ns.credit.policy").partitions == 1


def test_a_difference_says_what_was_found_and_what_is_wanted() -> None:
    text = str(TopicDifference("credit.scores", "replication_factor", "1", "3"))
    assert text == "credit.scores: replication_factor is 1, the settings want 3"


def test_no_wait_for_replicas_unless_asked() -> None:
    assert Settings().redis_min_replicas == 0
    assert Settings(redis_min_replicas=1).redis_wait_timeout_ms == 1_000
