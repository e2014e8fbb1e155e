"""Deployed as tested: every manifest is rendered, each service is built from exactly the environment
its container would get (secrets filled with generated values of their shape), in that manifest's
CW_ENVIRONMENT, and held to the one table of shared/deployment.py."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.manifests import (
    Container,
    compose_environments,
    compose_sources,
    host_secrets,
    kubernetes_environments,
    kubernetes_sources,
    render,
    start_problems,
    table_problems,
    table_secret,
    with_example_files,
)
from shared.deployment import DEPLOYMENTS, SERVICES, VARIABLES, FromHost, FromSecret, variables_of
from shared.settings import REPO_ROOT, Settings, variable_of

K8S = REPO_ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())]
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SETTINGS_VARIABLES = {variable_of(field) for field in Settings.model_fields}


def _kubernetes(kustomization: Path) -> tuple[dict[str, Container], dict[str, dict[str, str]]]:
    objects = render(kustomization)
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    return kubernetes_environments(objects, table_secret), config_maps


def _started(service: str, container: Container) -> Settings:
    """The settings the service starts with from its container's environment; fails naming why it would not start."""
    with tempfile.TemporaryDirectory() as root:
        env, missing = with_example_files(container, Path(root))
        problems = missing + start_problems(service, env)
        assert problems == [], f"{service} would not start: {problems}"
        return Settings.from_environment(env)


def test_the_table_names_only_variables_the_settings_read_and_secrets_only_from_secrets() -> None:
    for variable in VARIABLES:
        assert (variable.name in SETTINGS_VARIABLES) == variable.setting, variable.name
        for value in (variable.local, variable.production):
            if variable.secret:
                assert value is None or isinstance(value, (FromSecret, FromHost)), variable.name  # never a literal
    assert set(DEPLOYMENTS.values()) == {"local", "production"}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_kubernetes_rendering_gives_each_service_the_tables_environment(kustomization: Path) -> None:
    containers, config_maps = _kubernetes(kustomization)
    assert set(containers) == set(SERVICES)
    for service, container in containers.items():
        assert table_problems(service, "production", kubernetes_sources(container.spec, config_maps)) == [], service


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_service_starts_from_its_kubernetes_container_environment_with_production_checks(kustomization: Path) -> None:
    for service, container in _kubernetes(kustomization)[0].items():
        settings = _started(service, container)
        assert settings.environment == "production" and settings.environment_named
        assert settings.kafka_sasl_username == service  # its own principal (kafka-users.yaml)
        assert settings.redis_dsn.startswith(f"rediss://{service}:")  # its own Redis user, over TLS


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_partners_and_api_tokens_reach_the_services_that_promise_them_in_kubernetes(kustomization: Path) -> None:
    containers = _kubernetes(kustomization)[0]
    notification = _started("notification", containers["notification"])
    assert notification.webhook_partners, "the notification service would tell no partner"
    policy = _started("policy", containers["policy"])
    assert "api" in {port["name"] for port in containers["policy"].spec["ports"]}
    assert policy.api_tokens, "the customer-data API is open to upstream apps but would refuse every caller"


def test_every_kubernetes_deployment_names_its_environment_itself() -> None:
    for service, container in _kubernetes(K8S / "base")[0].items():
        own = {item["name"]: item.get("value") for item in container.spec["env"]}
        assert own.get("CW_ENVIRONMENT") == "production", service


def _compose_service(name: str) -> dict[str, Any]:
    return dict(COMPOSE["services"][name])


def test_every_compose_service_gets_the_tables_local_environment_and_starts_in_it() -> None:
    for service in SERVICES:
        host = host_secrets(service)
        env = compose_environments(COMPOSE, host)[service]
        assert table_problems(service, "local", compose_sources(_compose_service(service))) == [], service
        assert start_problems(service, env) == [], service
        assert Settings.from_environment(env).environment == "local"


def test_compose_forwards_the_api_tokens_to_the_policy_from_the_host_and_writes_none() -> None:
    tokens = host_secrets("policy")
    assert set(tokens) == {"CW_API_TOKENS"}
    policy = Settings.from_environment(compose_environments(COMPOSE, tokens)["policy"])
    given = json.loads(tokens["CW_API_TOKENS"])
    assert given and {name: token.get_secret_value() for name, token in policy.api_tokens.items()} == given
    unset = Settings.from_environment(compose_environments(COMPOSE, {})["policy"])
    assert unset.api_tokens == {}  # not passed: not set, and every API call is refused
    assert "CW_API_TOKENS" not in variables_of("scoring", "local")


def test_the_other_compose_containers_of_the_image_run_with_the_local_environment_only() -> None:
    common = set(variables_of("scoring", "local"))
    for name, env in compose_environments(COMPOSE, {}).items():
        if name in SERVICES:
            continue
        declared = set(compose_sources(_compose_service(name)))
        assert declared <= common, name
        assert Settings.from_environment(env).environment == "local", name


def test_the_production_overlay_lists_every_secret_an_operator_creates() -> None:
    listed = {
        line.split()[1]: line
        for line in (K8S / "overlays" / "production" / "kustomization.yaml").read_text().splitlines()
        if line.startswith("#   creditwindow-")
    }
    made_by_strimzi = set(SERVICES)  # a KafkaUser's Secret (kafka-users.yaml)
    for service in SERVICES:
        for name, value in variables_of(service, "production").items():
            if isinstance(value, FromSecret) and value.secret not in made_by_strimzi:
                assert value.secret in listed and value.key in listed[value.secret], (name, value)
