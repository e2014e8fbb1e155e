"""CW_ENVIRONMENT: outside local and test, nothing starts with a guessable key or unreplicated topics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from creditwindow.cli import app
from shared.environments import UnsafeEnvironment, check_environment, environment_problems
from shared.settings import DEV_SIGNING_KEY, Settings

STRONG = "x" * 40
STRONG2 = "y" * 40


def production(**overrides: Any) -> Settings:
    """Production settings that may start; each test breaks one thing."""
    values: dict[str, Any] = {
        "environment": "production",
        "policy_signing_keys": {"k1": STRONG},
        "topic_replication_factor": 3,
        **overrides,
    }
    return Settings(**values)


def test_the_default_environment_is_local_and_local_and_test_start_with_the_development_key() -> None:
    assert Settings().environment == "local"
    for environment in ("local", "test"):
        check_environment(Settings(environment=environment))  # type: ignore[arg-type]


def test_production_with_strong_keys_and_replicated_topics_starts() -> None:
    check_environment(
        production(
            webhook_partners={"p1": {"url": "https://partner.example/hook", "key": STRONG2}},
            api_tokens={"ops-console": STRONG2},
        )
    )


def test_production_refuses_the_development_policy_key_naming_the_variable() -> None:
    with pytest.raises(UnsafeEnvironment) as refused:
        check_environment(Settings(environment="production", topic_replication_factor=3))
    (problem,) = refused.value.problems
    assert problem.startswith("CW_POLICY_SIGNING_KEYS:") and "development key" in problem
    assert DEV_SIGNING_KEY not in str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "variable", "words"),
    [
        ({"policy_signing_keys": {"k1": STRONG, "k2": DEV_SIGNING_KEY}}, "CW_POLICY_SIGNING_KEYS", "key 'k2' is the development key"),
        ({"policy_signing_keys": {"k1": "short-key-31-bytes-long-xxxxxxx"}}, "CW_POLICY_SIGNING_KEYS", "is 31 bytes; use at least 32"),
        ({"policy_signing_keys": {}, "policy_signing_key": "too-short"}, "CW_POLICY_SIGNING_KEYS", "(CW_POLICY_SIGNING_KEY) is 9 bytes"),
        ({"webhook_partners": {"p1": {"url": "https://p/h", "key": "creditwindow-local-webhook-key"}}}, "CW_WEBHOOK_PARTNERS", "development key"),
        ({"webhook_partners": {"p1": {"url": "https://p/h", "key": "pk"}}}, "CW_WEBHOOK_PARTNERS", "partner 'p1' is 2 bytes"),
        ({"webhook_partners": {"p1": {"url": "http://p/h", "key": STRONG}}}, "CW_WEBHOOK_PARTNERS", "not https"),
        ({"api_tokens": {"ops": "guessable"}}, "CW_API_TOKENS", "'ops' is 9 bytes"),
        ({"topic_replication_factor": 1}, "CW_TOPIC_REPLICATION_FACTOR", "one copy"),
    ],
)
def test_production_refuses_each_unsafe_setting_naming_the_variable_and_not_the_secret(
    overrides: dict[str, Any], variable: str, words: str
) -> None:
    settings = production(**overrides)
    (problem,) = environment_problems(settings)
    assert problem.startswith(f"{variable}:") and words in problem
    for secret in settings.secret_values():
        assert secret not in problem


def test_every_problem_is_named_at_once() -> None:
    problems = environment_problems(Settings(environment="production", api_tokens={"ops": "x"}))
    assert [p.split(":")[0] for p in problems] == ["CW_POLICY_SIGNING_KEYS", "CW_API_TOKENS", "CW_TOPIC_REPLICATION_FACTOR"]


def _scoring(settings: Settings) -> object:
    from services.scoring.app import create_app

    return create_app(settings)


def _policy(settings: Settings) -> object:
    from services.policy.app import create_app

    return create_app(settings)


def _notification(settings: Settings) -> object:
    from services.notification.app import create_app

    return create_app(settings)


def _shadow(settings: Settings) -> object:
    from services.policy.shadow_app import create_shadow_app

    return create_shadow_app(settings, settings.policy_path)


@pytest.mark.parametrize("create", [_scoring, _policy, _notification, _shadow], ids=["scoring", "policy", "notification", "shadow"])
def test_every_composition_root_refuses_to_start_unsafe_in_production(create: Callable[[Settings], object]) -> None:
    with pytest.raises(UnsafeEnvironment, match="CW_POLICY_SIGNING_KEYS"):
        create(Settings(environment="production", topic_replication_factor=3, log_format="json"))
    create(production(log_format="json"))  # the same root starts once the keys are its own


def test_the_cli_refuses_to_start_unsafe_in_production_naming_the_variables() -> None:
    result = CliRunner().invoke(app, ["policy", "show"], env={"CW_ENVIRONMENT": "production"})
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "CW_ENVIRONMENT=production" in output and "CW_POLICY_SIGNING_KEYS" in output and "CW_TOPIC_REPLICATION_FACTOR" in output
    assert DEV_SIGNING_KEY not in output


def test_the_cli_names_a_setting_it_cannot_read_without_its_value() -> None:
    planted = "planted-token-value-0123456789abcdef"
    result = CliRunner().invoke(app, ["policy", "show"], env={"CW_API_TOKENS": json.dumps({"ops": [planted]})})
    assert result.exit_code == 1 and "CW_API_TOKENS ops" in " ".join(result.output.split())
    assert planted not in result.output


def test_compose_runs_the_local_environment_explicitly() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    assert compose["x-service"]["environment"]["CW_ENVIRONMENT"] == "local"
    assert DEV_SIGNING_KEY not in (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
