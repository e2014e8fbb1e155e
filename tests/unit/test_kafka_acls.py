"""The fleet's Kafka ACLs: each principal may do its part and nothing more."""

from __future__ import annotations

import pytest

from devtools.kafka_security import Acl, Operation, PatternType, ResourceType, fleet_acls
from shared.contracts import Topics

TOPICS = Topics("ns1")


def _allowed(principal: str, operation: Operation, resource: ResourceType, name: str) -> bool:
    """Whether the ACLs allow it, the way Kafka matches them (ALL covers every operation; prefixes match)."""

    def matches(acl: Acl) -> bool:
        named = acl.name == name if acl.pattern == PatternType.LITERAL else name.startswith(acl.name)
        return acl.principal == principal and acl.resource == resource and named and acl.operation in (operation, Operation.ALL)

    return any(matches(acl) for acl in fleet_acls(TOPICS))


def test_only_the_operator_writes_the_policy_topic_and_reads_the_dead_letters() -> None:
    assert _allowed("operator", Operation.WRITE, ResourceType.TOPIC, TOPICS.policy)
    assert _allowed("operator", Operation.READ, ResourceType.TOPIC, TOPICS.deadletter)
    for service in ("scoring", "policy", "notification"):
        assert not _allowed(service, Operation.WRITE, ResourceType.TOPIC, TOPICS.policy)
        assert not _allowed(service, Operation.READ, ResourceType.TOPIC, TOPICS.deadletter)
        assert _allowed(service, Operation.WRITE, ResourceType.TOPIC, TOPICS.deadletter)  # they dead-letter


@pytest.mark.parametrize(
    ("service", "reads", "writes"),
    [
        ("scoring", {"applications"}, {"scores", "deadletter"}),
        ("policy", {"scores", "policy", "windows", "drawdowns", "reviews", "notifications"}, {"windows", "shadow_windows", "drawdowns", "reviews", "deadletter"}),
        ("notification", {"windows", "drawdowns", "reviews"}, {"notifications", "deadletter"}),
    ],
)
def test_each_service_reads_its_inputs_in_its_own_group_and_writes_its_outputs(service: str, reads: set[str], writes: set[str]) -> None:
    every = {"applications", "scores", "windows", "notifications", "policy", "deadletter", "shadow_windows", "drawdowns", "reviews"}
    for name in every:
        topic = getattr(TOPICS, name)
        assert _allowed(service, Operation.READ, ResourceType.TOPIC, topic) == (name in reads), name
        assert _allowed(service, Operation.WRITE, ResourceType.TOPIC, topic) == (name in writes), name
        assert _allowed(service, Operation.DESCRIBE, ResourceType.TOPIC, topic)  # to check its topics exist
    assert _allowed(service, Operation.READ, ResourceType.GROUP, TOPICS.group(service))
    others = {"scoring", "policy", "notification"} - {service}
    assert not any(_allowed(service, Operation.READ, ResourceType.GROUP, TOPICS.group(other)) for other in others)
    assert not _allowed(service, Operation.CREATE, ResourceType.CLUSTER, "kafka-cluster")


def test_acls_stay_inside_their_namespace() -> None:
    assert not _allowed("operator", Operation.WRITE, ResourceType.TOPIC, Topics("other").policy)
    assert not _allowed("scoring", Operation.READ, ResourceType.TOPIC, Topics().applications)
    assert all(acl.name.startswith("ns1.") or acl.resource == ResourceType.CLUSTER for acl in fleet_acls(TOPICS))
