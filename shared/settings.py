"""Typed configuration, read once per process from the environment (12-factor), with local defaults.

Every variable is listed in the README. Nothing here connects to anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.topics import Topics

__all__ = ["DEV_SIGNING_KEY", "REPO_ROOT", "Settings"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# The local platform's key. Production sets CW_POLICY_SIGNING_KEY; the services warn when they
# run with this one.
DEV_SIGNING_KEY = "creditwindow-local-dev-signing-key-not-for-production"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """creditwindow settings. Kafka and Redis endpoints use their conventional variable names."""

    model_config = SettingsConfigDict(env_prefix="CW_", extra="ignore", frozen=True)

    # --- endpoints -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers (comma separated). Unset: the local platform's broker.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=_env("REDIS_URL"),
        description="Redis URL; rediss:// for TLS, redis://:password@host for AUTH. Unset: the local Redis.",
    )

    # --- Kafka security (documented in the README; PLAINTEXT on the local platform) ------------------
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    redis_ssl_ca_certs: Path | None = None

    # --- topics ------------------------------------------------------------------------------------
    topic_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,64}$", description="Prefix of every topic and group.")
    topic_partitions: int = Field(default=6, ge=1, le=256)
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    topic_replication_factor: int = Field(default=1, ge=1, le=5)

    # --- consuming and producing ---------------------------------------------------------------
    batch_max_records: int = Field(default=500, ge=1, le=10_000, description="Records handled per batch.")
    batch_timeout_ms: int = Field(default=100, ge=1, le=10_000, description="Longest wait of one poll; a poll returns as soon as records arrive.")
    producer_linger_ms: int = Field(default=0, ge=0, le=1000, description="Producer linger: 0 sends at once (records still batch while one request is in flight).")
    retry_initial_ms: int = Field(default=200, ge=1, description="First backoff on a transient fault.")
    retry_max_ms: int = Field(default=5_000, ge=1, description="Longest backoff on a transient fault.")
    producer_request_timeout_ms: int = Field(default=10_000, ge=1_000, le=120_000, description="How long a publication may take before it fails.")

    # --- the book in Redis (policy) -------------------------------------------------------------------
    book_retention_days: float = Field(
        default=30, gt=0, le=3650, description="Closed and superseded decision records and closed windows are kept this long."
    )
    book_rebuild_grace_s: float = Field(
        default=12.0, ge=0, le=600, description="A rebuild waits this long before reading the log (longer than a publication may take)."
    )

    # --- services ----------------------------------------------------------------------------------
    instance_id: str = Field(default="", max_length=64, description="Replica name in logs and metrics.")
    http_host: str = "127.0.0.1"
    scoring_http_port: int = Field(default=8101, ge=0, le=65535, description="HTTP port of /health and /metrics (0: a free port).")
    policy_http_port: int = Field(default=8102, ge=0, le=65535)
    notification_http_port: int = Field(default=8103, ge=0, le=65535)
    model_path: Path = Field(
        default=REPO_ROOT / "services" / "scoring" / "models" / "german-woe.json",
        description="The scorecard artifact the scoring service loads.",
    )
    policy_path: Path = Field(
        default=REPO_ROOT / "services" / "policy" / "policies" / "default.yaml",
        description="The policy used until a signed PolicyUpdated is restored from the topic.",
    )
    policy_signing_key: SecretStr = Field(default=SecretStr(DEV_SIGNING_KEY), description="HMAC key for policy updates.")
    policy_signing_key_id: str = "k1"
    webhook_signing_key: SecretStr = Field(default=SecretStr("creditwindow-local-webhook-key"))
    webhook_urls: dict[str, str] = Field(
        default_factory=dict, description='Partner id -> webhook URL, as JSON: {"p1": "http://127.0.0.1:9000/hook"}'
    )
    webhook_timeout_s: float = Field(default=2.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)

    # --- logging -------------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # --- local platform ------------------------------------------------------------------------------
    home: Path = Field(default=REPO_ROOT / ".cache", description="Where the local platform keeps jars, data and logs.")
    kafka_port: int = Field(default=9092, ge=1, le=65535, description="Port of the local Kafka broker.")
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    redis_port: int = Field(default=6379, ge=1, le=65535, description="Port of the local Redis.")
    kafka_heap: str = Field(default="768m", pattern=r"^\d+[mg]$", description="Heap of the local broker.")

    @model_validator(mode="after")
    def _retention_outlives_the_topics(self) -> Settings:
        # A redelivered score must still find its decision record: keep records longer than the scores.
        if self.book_retention_days * 86_400_000 <= self.topic_retention_ms:
            raise ValueError("CW_BOOK_RETENTION_DAYS must be longer than the topics' retention (CW_TOPIC_RETENTION_MS)")
        return self

    @property
    def book_retention_ms(self) -> int:
        return int(self.book_retention_days * 86_400_000)

    @property
    def topics(self) -> Topics:
        # Not cached: a cached value would survive model_copy(update={"topic_namespace": ...}).
        return Topics(self.topic_namespace)

    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def redis_prefix(self) -> str:
        """Prefix of every Redis key: the topic namespace, so isolated runs share nothing."""
        return f"cw:{self.topic_namespace}:" if self.topic_namespace else "cw:"

    @property
    def uses_dev_signing_key(self) -> bool:
        return self.policy_signing_key.get_secret_value() == DEV_SIGNING_KEY
