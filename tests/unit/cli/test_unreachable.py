"""Commands name the address they could not reach and how to start the local platform."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditwindow.cli import app


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens there


def _run(args: list[str], port: int) -> tuple[int, str]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, " ".join(result.output.split())


def test_an_unreachable_broker_is_named_with_how_to_start_it(closed_port: int) -> None:
    code, output = _run(["tail", "windows", "--from-beginning"], closed_port)
    assert code == 1
    assert f"Kafka at 127.0.0.1:{closed_port} does not answer" in output and "creditwindow dev up" in output


def test_an_unreachable_redis_is_named_with_how_to_start_it(closed_port: int) -> None:
    code, output = _run(["limits", "get", "cus_unreach_0001"], closed_port)
    assert code == 1
    assert f"Redis at redis://127.0.0.1:{closed_port}/0 does not answer" in output and "creditwindow dev up" in output


def test_dlq_simulate_policy_and_shadow_report_say_the_same(closed_port: int, tmp_path: Path) -> None:
    policy = Path(__file__).resolve().parents[3] / "services" / "policy" / "policies" / "default.yaml"
    for args in (["dlq", "list"], ["simulate", "--policy", str(policy)], ["policy", "show"], ["shadow", "report"], ["budget", "show"]):
        code, output = _run(args, closed_port)
        assert code == 1 and f"Kafka at 127.0.0.1:{closed_port} does not answer" in output, (args, output)
