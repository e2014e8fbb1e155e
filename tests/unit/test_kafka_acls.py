"""The fleet's Kafka ACLs: each principal may do its part and nothing more, from one table
(shared/contracts/principals.py) rendered twice, for the secure local platform and for Strimzi."""

from __future__ import annotations

import importlib.util
from typing import Any

import jsonschema
import pytest
import yaml

from devtools.kafka_security import PRINCIPALS, Acl, Operation, PatternType, ResourceType, fleet_acls
from devtools.kafka_users import PATH, render
from shared.contracts import Topics
from shared.contracts.principals import PRINCIPALS as TABLE
from shared.contracts.principals import TOPIC_ACCESS
from shared.settings import REPO_ROOT

TOPICS = Topics("ns1")
KAFKA_USERS = [doc for doc in yaml.safe_load_all(PATH.read_text()) if doc]
# Every operation Kafka knows (Strimzi's names), and what each rendering calls it.
OPERATIONS = ("Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs", "DescribeConfigs", "IdempotentWrite")


def _allowed(principal: str, operation: Operation, resource: ResourceType, name: str, topics: Topics = TOPICS) -> bool:
    """Whether the dev ACLs allow it, the way Kafka matches them (ALL covers every operation; prefixes match)."""

    def matches(acl: Acl) -> bool:
        named = acl.name == name if acl.pattern == PatternType.LITERAL else name.startswith(acl.name)
        return acl.principal == principal and acl.resource == resource and named and acl.operation in (operation, Operation.ALL)

    return any(matches(acl) for acl in fleet_acls(topics))


def _dev_allows(principal: str, operation: str, resource: str, name: str) -> bool:
    return _allowed(principal, Operation.named(operation), ResourceType[resource.upper()], name, Topics())


def _strimzi_allows(principal: str, operation: str, resource: str, name: str) -> bool:
    """Whether the KafkaUser in deploy/k8s allows it, matched as Kafka matches Strimzi's rules."""
    (user,) = [u for u in KAFKA_USERS if u["metadata"]["name"] == principal]
    for rule in user["spec"]["authorization"]["acls"]:
        target = rule["resource"]
        if target["type"] != resource or rule.get("type", "allow") != "allow":
            continue
        if resource != "cluster":
            prefixed = target.get("patternType", "literal") == "prefix"
            if not (name.startswith(target["name"]) if prefixed else name == target["name"]):
                continue
        if operation in rule["operations"] or "All" in rule["operations"]:
            return True
    return False


def _resources() -> list[tuple[str, str]]:
    topics = Topics()
    groups = {topics.group(g) for p in TABLE for g in p.groups} | {topics.group("someone-else")}
    return [("topic", getattr(topics, row.topic)) for row in TOPIC_ACCESS] + [("group", g) for g in sorted(groups)] + [("cluster", "kafka-cluster")]


def test_the_table_has_one_row_per_topic_of_the_code() -> None:
    assert sorted(getattr(Topics(), row.topic) for row in TOPIC_ACCESS) == sorted(Topics().all())
    every = {p.name for p in TABLE}
    assert all(row.writers | row.readers <= every for row in TOPIC_ACCESS)


@pytest.mark.parametrize("principal", [p.name for p in TABLE])
def test_the_dev_acls_and_the_strimzi_users_grant_exactly_the_same(principal: str) -> None:
    for resource, name in _resources():
        for operation in OPERATIONS:
            dev, strimzi = _dev_allows(principal, operation, resource, name), _strimzi_allows(principal, operation, resource, name)
            assert dev == strimzi, (principal, operation, resource, name, {"dev": dev, "strimzi": strimzi})


@pytest.mark.parametrize("row", TOPIC_ACCESS, ids=lambda row: row.topic)
def test_only_the_tables_writers_write_a_topic_and_only_its_readers_read_it_in_both_renderings(row: Any) -> None:
    topic = getattr(Topics(), row.topic)
    for principal in (p.name for p in TABLE):
        for allows in (_dev_allows, _strimzi_allows):
            assert allows(principal, "Write", "topic", topic) == (principal in row.writers), (allows.__name__, principal, topic)
            assert allows(principal, "Read", "topic", topic) == (principal in row.readers), (allows.__name__, principal, topic)


def test_the_kafka_users_file_is_what_the_table_gives_and_nothing_else_makes_a_kafka_user() -> None:
    assert PATH.read_text() == render(), "run python -m devtools.kafka_users"
    assert [u["metadata"]["name"] for u in KAFKA_USERS] == [p.name for p in TABLE] == list(PRINCIPALS)
    others = [
        doc
        for path in (REPO_ROOT / "deploy" / "k8s").rglob("*.yaml")
        if path != PATH and "schemas" not in path.parts
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "KafkaUser"
    ]
    assert others == []


def test_every_kafka_user_validates_against_the_strimzi_schema_strictly() -> None:
    spec = importlib.util.spec_from_file_location("generate", REPO_ROOT / "deploy" / "k8s" / "schemas" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    schemas = generate.crd_schemas([REPO_ROOT / "deploy" / "k8s" / "schemas" / "strimzi-crds.yaml"])
    validator = jsonschema.Draft202012Validator(generate.strict(schemas[("kafka.strimzi.io/v1beta2", "KafkaUser")]))
    for user in KAFKA_USERS:
        assert [error.message for error in validator.iter_errors(user)] == [], user["metadata"]["name"]
    broken = yaml.safe_load(yaml.safe_dump(KAFKA_USERS[0]))
    broken["spec"]["authorization"]["acls"][0]["operations"] = ["Raed"]
    assert list(validator.iter_errors(broken))  # the schema is strict enough to notice


def test_only_the_operator_writes_the_policy_topic_and_reads_the_dead_letters() -> None:
    assert _allowed("operator", Operation.WRITE, ResourceType.TOPIC, TOPICS.policy)
    assert _allowed("operator", Operation.READ, ResourceType.TOPIC, TOPICS.deadletter)
    for service in ("scoring", "policy", "notification", "upstream", "scaler"):
        assert not _allowed(service, Operation.WRITE, ResourceType.TOPIC, TOPICS.policy)
        assert not _allowed(service, Operation.READ, ResourceType.TOPIC, TOPICS.deadletter)
    for service in ("scoring", "policy", "notification"):
        assert _allowed(service, Operation.WRITE, ResourceType.TOPIC, TOPICS.deadletter)  # they dead-letter


def test_upstream_apps_write_request_topics_only_and_read_nothing() -> None:
    every = {"applications", "scores", "windows", "notifications", "policy", "deadletter", "shadow_windows", "drawdowns", "reviews"}
    requests = {"applications", "drawdowns", "reviews"}  # drawdowns and reviews: until they are split into requests and results
    for name in every:
        topic = getattr(TOPICS, name)
        assert _allowed("upstream", Operation.WRITE, ResourceType.TOPIC, topic) == (name in requests), name
        assert not _allowed("upstream", Operation.READ, ResourceType.TOPIC, topic), name
    assert not any(acl.principal == "upstream" and acl.resource != ResourceType.TOPIC for acl in fleet_acls(TOPICS))


def test_the_scaler_reads_no_record_and_joins_no_group() -> None:
    for topic in TOPICS.all():
        assert _allowed("scaler", Operation.DESCRIBE, ResourceType.TOPIC, topic)
        assert not _allowed("scaler", Operation.READ, ResourceType.TOPIC, topic)
    assert _allowed("scaler", Operation.DESCRIBE, ResourceType.GROUP, TOPICS.group("policy"))
    assert not _allowed("scaler", Operation.READ, ResourceType.GROUP, TOPICS.group("policy"))


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


def test_a_broker_secured_before_a_principal_existed_says_so_and_writes_the_env_files_it_can(tmp_path: Any) -> None:
    from devtools.kafka_security import SecureKafka

    secure = SecureKafka(tmp_path)
    secure.credentials_path.write_text('{"admin": "a", "operator": "o", "scoring": "s", "policy": "p", "notification": "n"}')
    assert secure.missing_principals() == ["upstream", "scaler"]
    written = secure.write_env_files(port=9092)
    assert sorted(path.name for path in written) == ["notification.env", "operator.env", "policy.env", "scoring.env"]
