"""The README is the newcomer's entry: the two commands, and every configuration variable."""

from __future__ import annotations

from shared.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text()


def test_the_two_commands_come_first() -> None:
    head = README[: README.index("## How it fits together")]
    assert "make demo" in head and "make test" in head


def test_every_setting_is_documented() -> None:
    aliases = {"kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS", "redis_url": "REDIS_URL"}
    missing = [
        aliases.get(name, f"CW_{name.upper()}")
        for name in Settings.model_fields
        if f"`{aliases.get(name, f'CW_{name.upper()}')}`" not in README
    ]
    assert not missing, f"README lacks: {missing}"
