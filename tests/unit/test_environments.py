"""CW_ENVIRONMENT: a service says where it runs; outside local and test nothing starts with a guessable
key, unreplicated topics, an open Kafka or an open Redis; no setting is read under a wrong name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from creditwindow.cli import app
from shared.environments import UnsafeEnvironment, check_environment, check_named_environment, environment_problems
from shared.settings import DEV_SIGNING_KEY, REPO_ROOT, TOOLING_VARIABLES, Settings, UnknownVariables, variable_of

STRONG = "x" * 40
STRONG2 = "y" * 40
SAFE_KAFKA = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "policy",
    "kafka_sasl_password": STRONG,
}
SAFE_REDIS = f"rediss://policy:{STRONG}@redis.internal:6380/0"


def production(**overrides: Any) -> Settings:
    """Production settings that may start; each test breaks one thing."""
    values: dict[str, Any] = {
        "environment": "production",
        "policy_signing_keys": {"k1": STRONG},
        "topic_replication_factor": 3,
        "redis_url": SAFE_REDIS,
        **SAFE_KAFKA,
        **overrides,
    }
    return Settings(**values)


def test_the_default_environment_is_local_and_local_and_test_start_with_the_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CW_ENVIRONMENT", raising=False)
    assert Settings().environment == "local" and not Settings().environment_named
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
        check_environment(Settings(environment="production", topic_replication_factor=3, redis_url=SAFE_REDIS, **SAFE_KAFKA))
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
        ({"kafka_security_protocol": "PLAINTEXT"}, "CW_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT lets anyone"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "CW_KAFKA_SECURITY_PROTOCOL", "set SASL_SSL"),
        ({"kafka_security_protocol": "SSL"}, "CW_KAFKA_SECURITY_PROTOCOL", "set SASL_SSL"),
        ({"kafka_sasl_username": None}, "CW_KAFKA_SASL_USERNAME", "own Kafka principal"),
        ({"kafka_sasl_password": None}, "CW_KAFKA_SASL_PASSWORD", "not set"),
        ({"redis_url": f"redis://policy:{STRONG}@redis.internal:6379/0"}, "REDIS_URL", "use rediss://"),
        ({"redis_url": "rediss://policy@redis.internal:6380/0"}, "REDIS_URL", "no password"),
        ({"redis_url": f"rediss://:{STRONG}@redis.internal:6380/0"}, "REDIS_URL", "no ACL user"),
        ({"redis_url": f"rediss://default:{STRONG}@redis.internal:6380/0"}, "REDIS_URL", "no ACL user (or `default`)"),
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
    assert [p.split(":")[0] for p in problems] == [
        "CW_POLICY_SIGNING_KEYS", "CW_API_TOKENS", "CW_KAFKA_SECURITY_PROTOCOL", "REDIS_URL", "REDIS_URL", "REDIS_URL",
        "CW_TOPIC_REPLICATION_FACTOR",
    ]  # fmt: skip


def test_sentinels_still_take_the_redis_user_password_and_tls_from_redis_url() -> None:
    assert environment_problems(production(redis_sentinels=("s1:26379",))) == []
    (problem, *_) = environment_problems(production(redis_sentinels=("s1:26379",), redis_url=None))
    assert problem.startswith("REDIS_URL:")


def test_a_process_that_holds_no_policy_key_needs_none_but_one_set_is_checked() -> None:
    without = production(policy_signing_keys={})
    assert environment_problems(without, policy_keys=False) == []
    assert environment_problems(without)[0].startswith("CW_POLICY_SIGNING_KEYS:")  # the policy, its shadow, the CLI
    weak = production(policy_signing_keys={"k1": "short"})
    assert environment_problems(weak, policy_keys=False)[0].startswith("CW_POLICY_SIGNING_KEYS:")


def test_a_service_must_be_told_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CW_ENVIRONMENT", raising=False)
    with pytest.raises(UnsafeEnvironment) as refused:
        check_named_environment(Settings())
    (problem,) = refused.value.problems
    assert problem.startswith("CW_ENVIRONMENT: not set")
    monkeypatch.setenv("CW_ENVIRONMENT", "local")  # the default's value, but said
    check_named_environment(Settings())
    check_named_environment(Settings.from_environment({"CW_ENVIRONMENT": "test"}))


def test_creditwindow_run_refuses_to_start_a_service_whose_environment_is_not_named() -> None:
    result = CliRunner().invoke(app, ["run", "scoring", "--port", "0"], env={"CW_ENVIRONMENT": None})
    assert result.exit_code == 1
    assert "CW_ENVIRONMENT: not set" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("variable", "words"),
    [
        ("CW_WEBHOOK_URLS", "CW_WEBHOOK_URLS (retired: each partner's URL and key are CW_WEBHOOK_PARTNERS)"),
        ("CW_WEBHOOK_SIGNING_KEY", "CW_WEBHOOK_SIGNING_KEY (retired"),
        ("CW_API_TOKEN", "CW_API_TOKEN (did you mean CW_API_TOKENS?)"),
        ("CW_REDIS_URL", "CW_REDIS_URL (did you mean REDIS_URL?)"),
        ("cw_enviroment", "CW_ENVIROMENT (did you mean CW_ENVIRONMENT?)"),
        ("CW_SOMETHING_ELSE", "no setting reads CW_SOMETHING_ELSE:"),
    ],
)
def test_an_unknown_variable_is_refused_by_name_with_the_one_to_set(variable: str, words: str) -> None:
    with pytest.raises(UnknownVariables) as refused:
        Settings.from_environment({variable: "planted-value-0001", "CW_ENVIRONMENT": "test"})
    assert words in str(refused.value)
    assert "planted-value-0001" not in str(refused.value)


def test_the_process_environment_is_checked_too_and_tooling_variables_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TOOLING_VARIABLES:
        monkeypatch.setenv(name, "1")
    Settings()
    monkeypatch.setenv("CW_WEBHOOK_URLS", "https://partner.example/hook")
    with pytest.raises(UnknownVariables, match="CW_WEBHOOK_URLS"):
        Settings()


def test_the_cli_names_an_unknown_variable_and_stops() -> None:
    result = CliRunner().invoke(app, ["policy", "show"], env={"CW_WEBHOOK_URLS": "https://planted.example/hook"})
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "CW_WEBHOOK_URLS" in output and "CW_WEBHOOK_PARTNERS" in output and "planted.example" not in output


def test_every_cw_variable_the_repository_names_is_a_setting_or_the_toolings() -> None:
    import re

    known = {variable_of(field) for field in Settings.model_fields} | TOOLING_VARIABLES
    retired = {"CW_WEBHOOK_URLS", "CW_WEBHOOK_SIGNING_KEY"}  # named only to be refused
    found: dict[str, set[str]] = {}
    suffixes = {".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".j2", ".cfg", ".txt", ".json"}
    for path in REPO_ROOT.rglob("*"):
        parts = path.relative_to(REPO_ROOT).parts
        if not path.is_file() or parts[0].startswith(".") or path == Path(__file__):  # this file plants unknown names
            continue
        if path.suffix not in suffixes and path.name not in ("Makefile", "Dockerfile", "run"):
            continue
        for name in re.findall(r"\bCW_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")):
            found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    unknown = {name: sorted(paths) for name, paths in found.items() if name not in known}
    assert {name: paths for name, paths in unknown.items() if name not in retired or paths != ["shared/settings.py"]} == {}


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


@pytest.mark.parametrize(
    ("create", "verifies_policies"),
    [(_scoring, False), (_policy, True), (_notification, False), (_shadow, True)],
    ids=["scoring", "policy", "notification", "shadow"],
)
def test_every_composition_root_refuses_to_start_unsafe_in_production(create: Callable[[Settings], object], verifies_policies: bool) -> None:
    with pytest.raises(UnsafeEnvironment) as refused:
        create(Settings(environment="production", topic_replication_factor=3, log_format="json"))
    variables = {problem.split(":")[0] for problem in refused.value.problems}
    assert {"CW_KAFKA_SECURITY_PROTOCOL", "REDIS_URL"} <= variables
    assert ("CW_POLICY_SIGNING_KEYS" in variables) == verifies_policies  # scoring and notification hold no policy key
    create(production(log_format="json"))  # the same root starts once Kafka, Redis and the keys are its own
    if not verifies_policies:
        create(production(log_format="json", policy_signing_keys={}))


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
