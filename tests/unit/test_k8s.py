"""deploy/k8s says what the fleet needs on a cluster. `make k8s-check` renders it and checks every
object against its schema; these check what schemas cannot: that it matches the code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from devtools.fleet import SERVICES
from shared.contracts import Topics
from shared.settings import REPO_ROOT, Settings

BASE = REPO_ROOT / "deploy" / "k8s" / "base"
CONSUMES = {"scoring": Topics().applications, "policy": Topics().scores, "notification": Topics().windows}


def _objects() -> Iterator[dict[str, Any]]:
    for path in sorted(BASE.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


OBJECTS = list(_objects())


def _of(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == kind}


def _container(service: str) -> dict[str, Any]:
    return _of("Deployment")[f"creditwindow-{service}"]["spec"]["template"]["spec"]["containers"][0]


def test_every_file_is_in_the_kustomization() -> None:
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")


def test_every_topic_of_the_code_is_a_kafka_topic_with_replication_3_and_min_insync_2() -> None:
    topics = {o["spec"]["topicName"]: o["spec"] for o in _of("KafkaTopic").values()}
    assert set(topics) == set(Topics().all())
    for name, spec in topics.items():
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2, name
        assert spec["partitions"] == (1 if name == Topics().policy else Settings().topic_partitions), name
    kept_forever = (Topics().windows, Topics().policy, Topics().scores, Topics().notifications, Topics().reviews)
    assert {topics[name]["config"]["retention.ms"] for name in kept_forever} == {-1}
    kafka = _of("Kafka")["creditwindow"]["spec"]["kafka"]["config"]
    assert kafka["min.insync.replicas"] == 2 and kafka["default.replication.factor"] == 3
    assert kafka["auto.create.topics.enable"] is False


def test_each_service_runs_its_own_command_with_probes_resources_and_no_root() -> None:
    for service in SERVICES:
        container = _container(service)
        assert container["args"][:3] == ["creditwindow", "run", service]
        assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["livenessProbe"]["httpGet"]["path"] != "/health"  # an outage must not restart replicas
        assert {"requests", "limits"} <= set(container["resources"])
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        pod = _of("Deployment")[f"creditwindow-{service}"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_keys_and_passwords_come_from_secrets_and_no_secret_is_shipped() -> None:
    assert not _of("Secret")
    config = _of("ConfigMap")["creditwindow-config"]["data"]
    assert not [key for key in config if key.endswith(("_KEY", "PASSWORD", "_TOKENS", "_PARTNERS"))]
    for service in SERVICES:
        for env in _container(service)["env"]:
            if env["name"].endswith(("_KEY", "PASSWORD", "_TOKENS", "_PARTNERS")):
                assert "secretKeyRef" in env["valueFrom"], (service, env["name"])
    policy_env = {e["name"] for e in _container("policy")["env"]}
    assert "CW_POLICY_SIGNING_KEY" in policy_env


def test_each_service_has_a_disruption_budget_and_scales_on_its_own_lag_up_to_the_partition_count() -> None:
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for b in _of("PodDisruptionBudget").values()
    }
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s["spec"] for s in _of("ScaledObject").values()}
    for service in SERVICES:
        assert f"creditwindow-{service}" in budgets
        spec = scaled[f"creditwindow-{service}"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == Topics().group(service)
        assert trigger["metadata"]["topic"] == CONSUMES[service]
        assert spec["maxReplicaCount"] <= Settings().topic_partitions


def test_only_the_customer_data_endpoint_is_open_to_upstream_apps() -> None:
    policies = _of("NetworkPolicy")
    deny = policies["creditwindow-default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    upstream = [
        (name, rule)
        for name, policy in policies.items()
        for rule in policy["spec"].get("ingress", [])
        if any("creditwindow.io/upstream" in str(peer) for peer in rule["from"])
    ]
    assert [name for name, _ in upstream] == ["creditwindow-limits-from-upstream"]
    assert upstream[0][1]["ports"] == [{"port": "api", "protocol": "TCP"}]
    assert [p["name"] for p in _container("policy")["ports"]] == ["http", "api"]
    assert [p["name"] for p in _container("scoring")["ports"]] == ["http"]
