"""Typed configuration, read once per process from the environment (12-factor), with local defaults.

Every variable is listed in docs/configuration.md. A `CW_` variable that no setting reads is refused,
by name (`UnknownVariables`): a misspelt or retired name must not leave its setting at the default
unseen. Nothing here connects to anything.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from shared.clock import Clock, ShiftedClock, SystemClock
from shared.contracts.topics import Topics
from shared.masking import mask_url
from shared.signing import KeyRing

__all__ = [
    "DEV_SIGNING_KEY",
    "REPO_ROOT",
    "TOOLING_VARIABLES",
    "Environment",
    "Settings",
    "UnknownVariables",
    "WebhookPartner",
    "variable_of",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
# The local platform's key, public in this repository: outside `local` and `test` nothing starts
# with it (shared/environments.py).
DEV_SIGNING_KEY = "creditwindow-local-dev-signing-key-not-for-production"

Environment = Literal["local", "test", "production"]


class WebhookPartner(BaseModel):
    """A partner's webhook: where decisions on its customers go, and the key only it shares with us."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    key: SecretStr = Field(description="HMAC-SHA256 key of this partner's webhooks (no other partner knows it).")


def _words(value: Any) -> Any:
    # A list from the environment as JSON (`["k1"]`) or comma separated (`k1,k2`).
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


_CONVENTIONAL = {"kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS", "redis_url": "REDIS_URL"}


def variable_of(field: str) -> str:
    """The environment variable of a settings field (`api_tokens` -> `CW_API_TOKENS`)."""
    return _CONVENTIONAL.get(field, f"CW_{field.upper()}")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


# Variables of the project's tooling that share the prefix but are no setting: the test suite's,
# the images' and compose's. A process may have them in its environment; the settings ignore them.
TOOLING_VARIABLES = frozenset(
    {
        "CW_TEST_NOW", "CW_TEST_ENDPOINTS", "CW_KEEP_PLATFORM", "CW_KEEP_CLUSTER", "CW_CLUSTER_TESTS",
        "CW_CLUSTER_FAULT_SECONDS", "CW_COMPOSE_CHECK", "CW_COMPOSE_KAFKA_PORT", "CW_COMPOSE_REDIS_PORT",
        "CW_COMPOSE_SCORING_PORT", "CW_COMPOSE_POLICY_PORT", "CW_COMPOSE_POLICY_API_PORT",
        "CW_COMPOSE_NOTIFICATION_PORT", "CW_IMAGE", "CW_IMAGES", "CW_BASE_IMAGE", "CW_KAFKA_IMAGE", "CW_REDIS_IMAGE",
        "CW_OFFICIAL_PYTHON_IMAGE", "CW_OFFICIAL_DEBIAN_IMAGE", "CW_OFFICIAL_KAFKA_IMAGE", "CW_OFFICIAL_REDIS_IMAGE",
    }
)  # fmt: skip
# Names that settings once read, and what replaced them.
_RETIRED = {
    "CW_WEBHOOK_URLS": "each partner's URL and key are CW_WEBHOOK_PARTNERS",
    "CW_WEBHOOK_SIGNING_KEY": "each partner's URL and key are CW_WEBHOOK_PARTNERS",
}


class UnknownVariables(ValueError):
    """`CW_` variables in the environment that no setting reads: a misspelt or retired name would
    otherwise leave its setting at the default without a word."""

    def __init__(self, names: Iterable[str], known: Iterable[str]) -> None:
        self.names = sorted(names)
        candidates = sorted(known)
        hints = []
        for name in self.names:
            if name in _RETIRED:
                hints.append(f"{name} (retired: {_RETIRED[name]})")
                continue
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        super().__init__(
            f"no setting reads {', '.join(hints)}: set the variable a setting reads (README, Configuration) "
            "or remove it from the environment"
        )


# The environment Settings reads: the process's, unless `Settings.from_environment` gives another.
_GIVEN_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("creditwindow_settings_environment", default=None)


class _FleetEnvironment(EnvSettingsSource):
    """The environment, read as pydantic-settings reads it, refusing `CW_` variables no setting reads."""

    def __init__(self, settings_cls: type[BaseSettings], *, init_state: Any = None) -> None:
        super().__init__(settings_cls, _init_state=init_state)
        given = _GIVEN_ENVIRONMENT.get()
        if given is not None:
            self.env_vars = dict(given) if self.case_sensitive else {k.lower(): v for k, v in given.items()}
        known = {variable_of(field) for field in settings_cls.model_fields}
        allowed = {name.lower() for name in known | TOOLING_VARIABLES}
        self.unknown = [name.upper() for name in self.env_vars if name.lower().startswith("cw_") and name.lower() not in allowed]
        self.known = known

    def __call__(self) -> dict[str, Any]:
        if self.unknown:
            raise UnknownVariables(self.unknown, self.known)
        return super().__call__()


class Settings(BaseSettings):
    """creditwindow settings. Kafka and Redis endpoints use their conventional variable names."""

    model_config = SettingsConfigDict(env_prefix="CW_", extra="ignore", frozen=True)

    environment: Environment = Field(
        default="local",
        description="local | test | production: outside local and test nothing starts with a development or short key. "
        "A service refuses to start unless it is set (the dev CLI, the demo and the tests set it).",
    )

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

    # --- Kafka security (documented in docs/configuration.md; PLAINTEXT on the local platform) ------
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    redis_ssl_ca_certs: Path | None = None

    # --- Redis through Sentinel, and durability (a replica has every write before it is published) -----
    redis_sentinels: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Sentinels (host:port, comma separated or JSON): the master is found through them. Empty: REDIS_URL."
    )
    redis_master_name: str = Field(default="creditwindow", min_length=1, max_length=128, description="The master's name at the Sentinels.")
    redis_min_replicas: int = Field(
        default=0, ge=0, le=5, description="Replicas a batch's Redis writes must reach (WAIT) before its events are published."
    )
    redis_wait_timeout_ms: int = Field(default=1_000, ge=10, le=60_000, description="How long WAIT may take before the batch is retried.")

    # --- topics ------------------------------------------------------------------------------------
    topic_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,64}$", description="Prefix of every topic and group.")
    topic_partitions: int = Field(default=6, ge=1, le=256)
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    topic_replication_factor: int = Field(default=1, ge=1, le=5)
    topic_min_insync_replicas: int | None = Field(
        default=None, ge=1, le=5, description="min.insync.replicas of created topics; unset: the replication factor minus one, at least 1."
    )

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
    # --- the policy's key ring (see shared/signing.py) -------------------------------------------------
    policy_signing_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Key id -> HMAC key of policy updates, JSON: {"k1": "...", "k2": "..."}. Empty: the single key below.',
    )
    policy_signing_key: SecretStr = Field(
        default=SecretStr(DEV_SIGNING_KEY), description="The single-key form of the ring (id: policy_signing_key_id)."
    )
    policy_signing_key_id: str = Field(default="k1", max_length=64, description="The key the CLI signs new updates with.")
    policy_retired_key_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Key ids that still verify history but sign nothing new (JSON list or comma separated)."
    )
    policy_max_clock_skew_s: int = Field(
        default=300, ge=0, le=3600, description="An update issued further in the future than this is refused."
    )

    # --- partner webhooks --------------------------------------------------------------------------
    webhook_partners: dict[str, WebhookPartner] = Field(
        default_factory=dict,
        description='Partner id -> {"url": ..., "key": ...}, JSON. Each partner has a key of its own.',
    )
    webhook_timeout_s: float = Field(default=2.0, gt=0, le=60)
    webhook_retry_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="How long a webhook is retried after its first try before a dead letter."
    )
    webhook_backoff_max_s: float = Field(default=900.0, gt=0, le=24 * 3600, description="Longest wait between two tries.")

    # --- customer-data API (its own listener; /health and /metrics stay on the service port) ---------
    api_host: str = Field(default="127.0.0.1", description="Bind address of the customer-data API.")
    policy_api_port: int = Field(default=8112, ge=0, le=65535, description="Port of the policy's customer-data API (0: a free port).")
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description='Caller name -> bearer token, JSON. No token: every request is refused.'
    )
    api_rate_per_s: float = Field(default=10.0, gt=0, le=10_000, description="Requests per second each token may make.")
    api_burst: int = Field(default=20, ge=1, le=100_000, description="Requests a token may make at once before the rate applies.")

    # --- time ------------------------------------------------------------------------------------------
    clock_offset_s: float = Field(
        default=0.0,
        ge=-100 * 366 * 86_400,
        le=100 * 366 * 86_400,
        description="Local and test only: the fleet's clock runs this many seconds off the system's "
        "(a run at a month's end or a leap day on the real broker). Refused in production.",
    )

    # --- logging -------------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # --- local platform ------------------------------------------------------------------------------
    home: Path = Field(default=REPO_ROOT / ".cache", description="Where the local platform keeps jars, data and logs.")
    kafka_port: int = Field(default=9092, ge=1, le=65535, description="Port of the local Kafka broker.")
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    redis_port: int = Field(default=6379, ge=1, le=65535, description="Port of the local Redis.")
    kafka_heap: str = Field(default="768m", pattern=r"^\d+[mg]$", description="Heap of the local broker.")
    # --- the local cluster (`creditwindow dev up --cluster`) ---------------------------------------------
    cluster_kafka_port: int = Field(default=19101, ge=1, le=65000, description="First broker port of the local cluster (+1, +2; controllers +10).")
    cluster_redis_port: int = Field(default=16479, ge=1, le=65000, description="The local cluster's first Redis (its replica +1).")
    cluster_sentinel_port: int = Field(default=26379, ge=1, le=65000, description="The local cluster's first Sentinel (+1, +2).")
    cluster_kafka_heap: str = Field(default="256m", pattern=r"^\d+[mg]$", description="Heap of each broker of the local cluster.")

    @model_validator(mode="after")
    def _insync_within_replication(self) -> Settings:
        if self.topic_min_insync_replicas is not None and self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError("CW_TOPIC_MIN_INSYNC_REPLICAS cannot exceed CW_TOPIC_REPLICATION_FACTOR (no write would succeed)")
        return self

    @model_validator(mode="after")
    def _retention_outlives_the_topics(self) -> Settings:
        # A redelivered score must still find its decision record: keep records longer than the scores.
        if self.book_retention_days * 86_400_000 <= self.topic_retention_ms:
            raise ValueError("CW_BOOK_RETENTION_DAYS must be longer than the topics' retention (CW_TOPIC_RETENTION_MS)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environment = _FleetEnvironment(settings_cls, init_state=getattr(env_settings, "_init_state", None))
        return init_settings, environment, dotenv_settings, file_secret_settings

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **values: Any) -> Settings:
        """The settings a process with exactly `environ` as its environment reads (a container's, say)."""
        token = _GIVEN_ENVIRONMENT.set(environ)
        try:
            return cls(**values)
        finally:
            _GIVEN_ENVIRONMENT.reset(token)

    @property
    def environment_named(self) -> bool:
        """Whether CW_ENVIRONMENT was given (in the environment or by the code), not left at its default."""
        return "environment" in self.model_fields_set

    def clock(self) -> Clock:
        """The clock a composition root injects: the system's, moved by `clock_offset_s` if set."""
        return ShiftedClock(timedelta(seconds=self.clock_offset_s)) if self.clock_offset_s else SystemClock()

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
    def min_insync_replicas(self) -> int:
        """min.insync.replicas of the fleet's topics: as set, else one less than the replication factor."""
        return self.topic_min_insync_replicas or max(1, self.topic_replication_factor - 1)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """The Sentinels as (host, port) pairs (empty: Redis is REDIS_URL itself)."""
        out = []
        for item in self.redis_sentinels:
            host, _, port = item.rpartition(":")
            out.append((host or "127.0.0.1", int(port)))
        return out

    @property
    def redis_where(self) -> str:
        """Where Redis is, as it may be shown: the Sentinels and the master's name, or the masked URL."""
        if self.redis_sentinels:
            return f"sentinel {self.redis_master_name}@{','.join(self.redis_sentinels)}"
        return self.redis_dsn_masked

    @property
    def redis_prefix(self) -> str:
        """Prefix of every Redis key: the topic namespace, so isolated runs share nothing."""
        return f"cw:{self.topic_namespace}:" if self.topic_namespace else "cw:"

    @property
    def redis_dsn_masked(self) -> str:
        """The Redis URL as it may be shown or logged: any password replaced by `***`."""
        return mask_url(self.redis_dsn)

    @property
    def policy_key_ring(self) -> KeyRing:
        """The keys that verify policy updates, the one that signs new ones, and those retired."""
        keys = self.policy_signing_keys or {self.policy_signing_key_id: self.policy_signing_key}
        return KeyRing(
            keys={key_id: key.get_secret_value().encode() for key_id, key in keys.items()},
            signing_key_id=self.policy_signing_key_id,
            retired=frozenset(self.policy_retired_key_ids),
        )

    def secret_values(self) -> list[str]:
        """Every secret these settings hold (keys, tokens, passwords), for masking text that is shown."""
        secrets = [key.get_secret_value() for key in (self.policy_signing_key, *self.policy_signing_keys.values())]
        secrets += [partner.key.get_secret_value() for partner in self.webhook_partners.values()]
        secrets += [token.get_secret_value() for token in self.api_tokens.values()]
        if self.kafka_sasl_password is not None:
            secrets.append(self.kafka_sasl_password.get_secret_value())
        password = urlsplit(self.redis_dsn).password
        if password:
            secrets.append(unquote(password))
        return secrets

    @field_validator("policy_retired_key_ids", mode="before")
    @classmethod
    def _retired_ids(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinels(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_ports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            host, sep, port = item.rpartition(":")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"a sentinel is host:port, not {item!r}")
        return value

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # Secrets are SecretStr; a password inside the Redis URL is masked too, so no repr, traceback
        # or log line shows it.
        for name, value in super().__repr_args__():
            yield name, (mask_url(value) if name == "redis_url" and isinstance(value, str) else value)
