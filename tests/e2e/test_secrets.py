"""Secrets never print: a password planted in every secret setting appears in no output of the CLI
or of a service process, whatever goes wrong (unreachable endpoints, refused settings)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT

PLANTED = {
    "redis": "planted-redis-pw-7f3a9c",
    "sasl": "planted-sasl-pw-51d2e8",
    "policy_key": "planted-policy-key-0123456789abcdef0123",
    "token": "planted-api-token-0123456789abcdef012345",
    "webhook": "planted-webhook-key-0123456789abcdef0123",
}


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CW_") and k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    return {
        **env,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "REDIS_URL": f"redis://:{PLANTED['redis']}@127.0.0.1:{port}/0",
        "CW_KAFKA_SASL_USERNAME": "scoring",
        "CW_KAFKA_SASL_PASSWORD": PLANTED["sasl"],
        "CW_POLICY_SIGNING_KEYS": json.dumps({"k1": PLANTED["policy_key"]}),
        "CW_API_TOKENS": json.dumps({"ops": PLANTED["token"]}),
        "CW_WEBHOOK_PARTNERS": json.dumps({"p1": {"url": "https://partner.invalid/hook", "key": PLANTED["webhook"]}}),
        "CW_LOG_FORMAT": "json",
        "CW_ENVIRONMENT": "test",
        "COLUMNS": "200",
        **extra,
    }


def _cli(args: list[str], env: dict[str, str], *, stdout_only: bool = False) -> str:
    done = subprocess.run([sys.executable, "-m", "creditwindow", *args], env=env, capture_output=True, text=True, timeout=90)
    return done.stdout if stdout_only else done.stdout + done.stderr


def _leaks(text: str) -> list[str]:
    return [name for name, secret in PLANTED.items() if secret in text]


@pytest.mark.parametrize(
    "args",
    [["dev", "status"], ["dev", "status", "--json"], ["limits", "get", "cus_secret_0001"], ["budget", "show"],
     ["policy", "show"], ["dlq", "list"], ["tail", "windows", "--limit", "1"]],
    ids=lambda a: " ".join(a),
)  # fmt: skip
def test_cli_commands_that_fail_to_reach_their_endpoints_print_no_secret(args: list[str], closed_port: int) -> None:
    for protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        output = _cli(args, _env(closed_port, CW_KAFKA_SECURITY_PROTOCOL=protocol))
        assert output.strip(), "the command said nothing"
        assert not _leaks(output), f"{_leaks(output)} printed by `creditwindow {' '.join(args)}`:\n{output[-2000:]}"


def test_dev_status_shows_the_redis_url_with_its_password_masked(closed_port: int) -> None:
    rows = json.loads(_cli(["dev", "status", "--json"], _env(closed_port), stdout_only=True))
    redis = next(row for row in rows if row["name"] == "redis")
    assert redis["address"] == f"redis://:***@127.0.0.1:{closed_port}/0"


def test_a_refused_production_start_names_the_problem_and_no_secret(closed_port: int) -> None:
    env = _env(closed_port, CW_ENVIRONMENT="production", CW_API_TOKENS=json.dumps({"ops": "short-planted"}))
    output = _cli(["run", "policy", "--port", "0"], env)
    assert "CW_API_TOKENS" in output and "CW_TOPIC_REPLICATION_FACTOR" in output
    assert "short-planted" not in output and not _leaks(output)


@pytest.mark.parametrize("service", ["scoring", "policy", "notification"])
def test_a_service_that_cannot_reach_kafka_or_redis_logs_no_secret(service: str, closed_port: int, tmp_path: Path) -> None:
    log_path = tmp_path / f"{service}.log"
    env = _env(closed_port, CW_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", CW_POLICY_API_PORT="0")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "creditwindow", "run", service, "--port", "0"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True,
        )  # fmt: skip
        try:
            time.sleep(8)  # long enough to try Kafka and Redis, fail, and say so
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    output = log_path.read_text(errors="replace")
    assert output.strip(), "the service said nothing"
    assert not _leaks(output), f"{_leaks(output)} in the {service} log:\n{output[-3000:]}"
