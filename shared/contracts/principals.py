"""Who writes and who reads each topic: one row per topic, one Kafka principal per kind of writer.
Pure data, and the grants it implies.

Every ACL of the fleet comes from this table: the secure local platform's (`creditwindow dev up
--secure`, devtools/kafka_security.py) and a Strimzi `KafkaUser` per principal
(deploy/k8s/base/kafka-users.yaml, written by `python -m devtools.kafka_users`);
tests/unit/test_kafka_acls.py holds both renderings to the table. A new topic is a property in
`Topics` and one row here.

The principals:

- one per service (`scoring`, `policy`, `notification`): reads its inputs in its own consumer
  groups, writes its results and its dead letters;
- `upstream`: the lender's apps; write request topics, read nothing;
- `operator`: the operators' CLI; reads every topic, writes signed controls and (to replay a dead
  letter) request topics, creates topics;
- `scaler`: KEDA, which scales each service on its group's lag; describes topics and groups, reads
  no record.

`credit.drawdowns` and `credit.reviews` carry requests and results today: upstream apps and the
policy both write them until each is split into a request and a result topic (two rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.topics import Topics

__all__ = [
    "NOTIFICATION",
    "OPERATOR",
    "POLICY",
    "PRINCIPALS",
    "SCALER",
    "SCORING",
    "SERVICE_PRINCIPALS",
    "TOPIC_ACCESS",
    "UPSTREAM",
    "Grant",
    "Principal",
    "TopicAccess",
    "grants",
]

SCORING, POLICY, NOTIFICATION = "scoring", "policy", "notification"
UPSTREAM, OPERATOR, SCALER = "upstream", "operator", "scaler"
SERVICE_PRINCIPALS = (SCORING, POLICY, NOTIFICATION)


@dataclass(frozen=True, slots=True)
class TopicAccess:
    """Who may write a topic and who may read it (`topic`: its name in `Topics`, e.g. `windows`)."""

    topic: str
    writers: frozenset[str]
    readers: frozenset[str]


def _row(topic: str, *, writers: tuple[str, ...], readers: tuple[str, ...]) -> TopicAccess:
    return TopicAccess(topic, frozenset(writers), frozenset(readers))


TOPIC_ACCESS: tuple[TopicAccess, ...] = (
    #     topic               writers                                readers
    _row("applications",   writers=(UPSTREAM, OPERATOR),          readers=(SCORING, OPERATOR)),
    _row("scores",         writers=(SCORING,),                    readers=(POLICY, OPERATOR)),
    # the decision log: notification tells it, the policy rebuilds its book from it
    _row("windows",        writers=(POLICY,),                     readers=(POLICY, NOTIFICATION, OPERATOR)),
    # what each customer was told: an explanation shows the message as sent
    _row("notifications",  writers=(NOTIFICATION,),               readers=(POLICY, OPERATOR)),
    _row("policy",         writers=(OPERATOR,),                   readers=(POLICY, OPERATOR)),
    # dead letters hold the original bytes (raw applications): operators only
    _row("deadletter",     writers=SERVICE_PRINCIPALS,            readers=(OPERATOR,)),
    # requests and results together, until split
    _row("drawdowns",      writers=(UPSTREAM, POLICY, OPERATOR),  readers=(POLICY, NOTIFICATION, OPERATOR)),
    _row("shadow_windows", writers=(POLICY,),                     readers=(OPERATOR,)),
    # requests, the operators' signed decisions and the policy's results together, until split
    _row("reviews",        writers=(UPSTREAM, POLICY, OPERATOR),  readers=(POLICY, NOTIFICATION, OPERATOR)),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Principal:
    """What a principal may do besides reading and writing topics.

    `groups`: consumer groups it commits in (`Topics.group(name)`; replicas share them);
    `describes_topics`: Describe and DescribeConfigs on every fleet topic (a service checks its topics
    at start, the operator compares them with the settings, the scaler reads their end offsets);
    `describes_groups`: Describe on every fleet group (lag); `cluster`: operations on the cluster.
    """

    name: str
    about: str
    groups: tuple[str, ...] = ()
    describes_topics: bool = False
    describes_groups: bool = False
    cluster: tuple[str, ...] = ()


PRINCIPALS: tuple[Principal, ...] = (
    Principal(SCORING, "the scoring service", groups=("scoring",), describes_topics=True),
    Principal(
        POLICY,
        "the policy service (and a shadow policy)",
        groups=("policy", "policy-shadow", "policy-drawdowns", "policy-reviews"),
        describes_topics=True,
    ),
    Principal(
        NOTIFICATION,
        "the notification service",
        groups=("notification", "notification-drawdowns", "notification-reviews"),
        describes_topics=True,
    ),
    Principal(UPSTREAM, "the lender's apps: requests only"),
    Principal(
        OPERATOR,
        "the operators' CLI",
        describes_topics=True,
        describes_groups=True,
        cluster=("Create", "Describe", "DescribeConfigs"),
    ),
    Principal(SCALER, "KEDA, scaling each service on its group's lag", describes_topics=True, describes_groups=True),
)


@dataclass(frozen=True, slots=True)
class Grant:
    """Allow `principal` to do `operation` (Kafka's name: Read, Write, ...) on a topic, a group or the
    cluster, named literally or by prefix."""

    principal: str
    operation: str
    resource: str  # "topic" | "group" | "cluster"
    name: str
    prefixed: bool = False


def grants(topics: Topics) -> list[Grant]:
    """Every grant of the table in a namespace, principal by principal, in the table's order."""
    out: list[Grant] = []
    for principal in PRINCIPALS:
        name = principal.name
        if principal.describes_topics:
            out += [Grant(name, op, "topic", topics.topic_prefix, prefixed=True) for op in ("Describe", "DescribeConfigs")]
        for row in TOPIC_ACCESS:
            topic = getattr(topics, row.topic)
            out += [Grant(name, "Read", "topic", topic)] if name in row.readers else []
            out += [Grant(name, "Write", "topic", topic)] if name in row.writers else []
        out += [Grant(name, "Read", "group", topics.group(group)) for group in principal.groups]
        if principal.describes_groups:
            out.append(Grant(name, "Describe", "group", topics.group_prefix, prefixed=True))
        out += [Grant(name, op, "cluster", "kafka-cluster") for op in principal.cluster]
    return out
