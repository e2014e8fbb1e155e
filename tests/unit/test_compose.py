"""docker-compose.yml runs the same stack as the local platform: Kafka, Redis, topics, three services,
from one image. `make compose-check` (tests/compose) brings it up for real; these read the files."""

from __future__ import annotations

import re

import yaml

from devtools.fleet import SERVICES
from shared.settings import REPO_ROOT, Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
APP_IMAGE = "${CW_IMAGE:-creditwindow:local}"
# The local platform's and the shared services' ports: the stack never takes them.
TAKEN = {9092, 9093, 6379, 8101, 8102, 8103}


def _app_services() -> dict[str, dict]:  # type: ignore[type-arg]
    return {name: service for name, service in COMPOSE["services"].items() if service.get("image") == APP_IMAGE}


def _host_port(mapping: str) -> int:
    host = mapping.rsplit(":", 1)[0]
    found = re.search(r"(\d+)\}?$", host)
    assert found, mapping
    return int(found.group(1))


def test_the_stack_has_kafka_redis_topics_and_each_service() -> None:
    assert {"kafka", "redis", "topics", *SERVICES} <= set(COMPOSE["services"])


def test_kafka_is_a_single_kraft_node_of_the_same_major_version_and_topics_come_from_the_project() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"] == "${CW_KAFKA_IMAGE:-apache/kafka:4.1.1}"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_every_port_is_published_on_loopback_only_and_away_from_the_local_platform() -> None:
    for name, service in COMPOSE["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)
            assert _host_port(mapping) not in TAKEN, (name, mapping)


def test_one_image_is_built_once_and_every_app_service_runs_it() -> None:
    built = [name for name, service in COMPOSE["services"].items() if "build" in service]
    assert built == ["topics"]
    assert COMPOSE["services"]["topics"]["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert {"topics", "cli", *SERVICES} == set(_app_services())
    assert all(service["pull_policy"] == "never" for service in _app_services().values())


def test_each_service_runs_its_own_process_with_the_cli_and_waits_for_topics_and_redis() -> None:
    for name in SERVICES:
        service = COMPOSE["services"][name]
        assert service["command"][:3] == ["creditwindow", "run", name]
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        port = int(service["command"][-1])
        assert port == Settings().model_dump()[f"{name}_http_port"]
        assert "/health" in " ".join(service["healthcheck"]["test"])
    assert COMPOSE["services"]["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_every_app_container_says_it_is_local_and_carries_no_key() -> None:
    fields = {f"CW_{name.upper()}" for name in Settings.model_fields} | {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}
    for name, service in _app_services().items():
        env = service["environment"]
        assert env["CW_ENVIRONMENT"] == "local", name
        assert set(env) <= fields, name
        assert not [key for key in env if key.endswith("_KEY") or "PASSWORD" in key], name
        assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka:") and env["REDIS_URL"].startswith("redis://redis:")


def test_kafka_and_redis_keep_their_data_on_named_volumes() -> None:
    assert set(COMPOSE["volumes"]) == {"kafka-data", "redis-data"}
    assert "kafka-data:/var/lib/kafka/data" in COMPOSE["services"]["kafka"]["volumes"]
    assert COMPOSE["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "redis-data:/data" in COMPOSE["services"]["redis"]["volumes"]
    assert "--appendonly" in COMPOSE["services"]["redis"]["command"]


def test_the_image_is_multi_stage_non_root_and_installs_the_runtime_lock_only() -> None:
    text = (REPO_ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert text.count("FROM ${BASE_IMAGE}") == 2
    assert "--require-hashes" in text and "requirements/runtime.txt" in text
    assert "--no-deps" in text and "[dev" not in text and "[model" not in text
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    for folder in ("shared", "services", "creditwindow"):
        assert f"COPY {folder} " in text


def test_the_customer_data_api_has_its_own_port_on_loopback_apart_from_health_and_metrics() -> None:
    policy = COMPOSE["services"]["policy"]
    api_port = Settings().policy_api_port
    assert any(port.startswith("127.0.0.1:") and port.split("#")[0].strip().endswith(f":{api_port}") for port in policy["ports"])
    assert api_port != Settings().policy_http_port
    assert all(port.startswith("127.0.0.1:") for name in SERVICES for port in COMPOSE["services"][name]["ports"])


def test_the_build_context_is_a_short_allow_list() -> None:
    lines = [
        line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything out, then only what the image needs back in
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "requirements/runtime.txt",
        "requirements/build.txt",
        "shared",
        "services",
        "creditwindow",
    }
