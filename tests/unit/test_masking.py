"""Secrets as they may be shown: a URL's password and the settings' own secrets are masked."""

from __future__ import annotations

from shared.masking import mask_secrets, mask_url
from shared.settings import Settings


def test_a_urls_password_is_masked_and_the_rest_kept() -> None:
    assert mask_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_url("rediss://app:p%40ss@cache:6380/2") == "rediss://app:***@cache:6380/2"
    assert mask_url("redis://cache:6379/0?password=s3cret&db=1") == "redis://cache:6379/0?password=***&db=1"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_url("no url here: a@b") == "no url here: a@b"


def test_known_secrets_are_masked_anywhere_in_a_text() -> None:
    assert mask_secrets("auth failed for pw-123456 at redis://:pw-123456@h/0", ["pw-123456", ""]) == "auth failed for *** at redis://:***@h/0"


def test_the_settings_never_show_the_redis_password_nor_a_key() -> None:
    settings = Settings(
        redis_url="redis://:s3cret-redis@cache:6379/0",
        kafka_sasl_password="s3cret-sasl",
        operator_private_key="ops-a:s3cret-operator-key",
        api_tokens={"ops": "s3cret-token"},
        webhook_partners={"p1": {"url": "https://p/h", "key": "s3cret-webhook"}},
    )
    shown = repr(settings) + str(settings) + settings.redis_dsn_masked
    assert "s3cret" not in shown and "redis://:***@cache:6379/0" in shown
    assert set(settings.secret_values()) >= {"s3cret-redis", "s3cret-sasl", "ops-a:s3cret-operator-key", "s3cret-token", "s3cret-webhook"}
    assert settings.redis_dsn == "redis://:s3cret-redis@cache:6379/0"  # the client still gets the real one


def test_the_operators_public_ring_is_read_from_json_in_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    public = Settings().operator_public_keys["dev"].public_key
    monkeypatch.setenv("CW_OPERATOR_PUBLIC_KEYS", '{"ops-a": {"public_key": "%s", "retire_at": "2027-06-30T00:00:00+08:00"}}' % public)
    (key,) = Settings().operator_ring.keys.values()
    assert key.key_id == "ops-a" and key.retire_at.isoformat() == "2027-06-30T00:00:00+08:00"
