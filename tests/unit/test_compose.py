"""docker-compose.yml runs the same stack as the local platform: Kafka, Redis, topics, three services."""

from __future__ import annotations

from pathlib import Path

import yaml

from devtools.fleet import SERVICES
from shared.settings import REPO_ROOT, Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_the_stack_has_kafka_redis_topics_and_each_service() -> None:
    assert {"kafka", "redis", "topics", *SERVICES} <= set(COMPOSE["services"])


def test_kafka_is_a_single_kraft_node_of_the_same_major_version() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from the project
    assert all(port.startswith("127.0.0.1:") for port in kafka["ports"])


def test_each_service_runs_its_own_process_with_the_cli_and_waits_for_topics_and_redis() -> None:
    for name in SERVICES:
        service = COMPOSE["services"][name]
        assert service["command"][:3] == ["creditwindow", "run", name]
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        port = int(service["command"][-1])
        assert port == Settings().model_dump()[f"{name}_http_port"]
        assert "/health" in " ".join(service["healthcheck"]["test"])


def test_service_environment_names_real_settings() -> None:
    fields = {f"CW_{name.upper()}" for name in Settings.model_fields} | {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}
    env = COMPOSE["services"]["scoring"]["environment"]
    assert set(env) <= fields
    assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka:") and env["REDIS_URL"].startswith("redis://redis:")


def test_the_build_uses_the_projects_dockerfile_which_installs_the_package() -> None:
    build = COMPOSE["services"]["scoring"]["build"]
    dockerfile = REPO_ROOT / build["context"] / build["dockerfile"]
    text = Path(dockerfile).read_text()
    assert "pip install ." in text and "USER creditwindow" in text
    for folder in ("shared", "services", "creditwindow"):
        assert f"COPY {folder} " in text


def test_the_customer_data_api_has_its_own_port_on_loopback_apart_from_health_and_metrics() -> None:
    policy = COMPOSE["services"]["policy"]
    api_port = Settings().policy_api_port
    assert f"127.0.0.1:{api_port}:{api_port}" in policy["ports"]
    assert api_port != Settings().policy_http_port
    assert all(port.startswith("127.0.0.1:") for name in SERVICES for port in COMPOSE["services"][name]["ports"])
