"""The deployed environment, in one table: for each service, every variable its container gets where
it is deployed, its value there or where the value comes from, which are secrets, and its Kafka
principal. Pure data; the runtime never reads it.

Two places deploy the fleet, each in one environment:

- `local`: docker-compose.yml (the same stack as the local platform, development keys);
- `production`: deploy/k8s, the base and every overlay (Kubernetes, Strimzi, Redis with Sentinel).

A secret is never written in a manifest: in Kubernetes it is a key of a Secret (`FromSecret`), in
compose it is passed through from the host's environment (`FromHost`). `Shape` says what a secret's
value looks like, so an operator knows what to create and a check can make one.

tests/unit/test_deployment.py renders docker-compose.yml and every kustomization of deploy/k8s,
builds each service from exactly the environment its container gets (image, ConfigMaps, Secrets with
generated values of their shape, references resolved as Kubernetes does) and holds it to this
table: the same variables and values, every secret from where the table says, every one a setting
(or `REDIS_PASSWORD`, spliced into REDIS_URL), and the service starts in that environment,
production checks included. `make k8s-check` runs the same check on kustomize's own rendering
(devtools/manifests.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.contracts.principals import SERVICE_PRINCIPALS

__all__ = [
    "DEPLOYMENTS",
    "SERVICES",
    "VARIABLES",
    "FromHost",
    "FromPod",
    "FromSecret",
    "Shape",
    "Value",
    "Variable",
    "variables_of",
]

SERVICES = SERVICE_PRINCIPALS  # each service signs in to Kafka (and Redis) as the principal of its name
# Where the fleet is deployed, and the environment each place runs in.
DEPLOYMENTS = {"compose": "local", "kubernetes": "production"}


class Shape(Enum):
    """What a secret's value looks like."""

    PASSWORD = "a random password of URL-safe characters (it is spliced into REDIS_URL)"
    KEY = "an HMAC key: at least 32 random bytes"
    TOKENS = 'JSON {"caller": "bearer token"}, each token at least 32 random bytes'
    PARTNERS = 'JSON {"partner": {"url": "https://...", "key": "..."}}, each key at least 32 random bytes'


@dataclass(frozen=True, slots=True)
class FromSecret:
    """Kubernetes: the key `key` of the Secret `secret` (`{service}` stands for the service)."""

    secret: str
    key: str
    shape: Shape


@dataclass(frozen=True, slots=True)
class FromHost:
    """Compose: passed through from the environment of whoever runs `docker compose` (unset if unset)."""

    shape: Shape


@dataclass(frozen=True, slots=True)
class FromPod:
    """Kubernetes: a field of the pod (the downward API), e.g. `metadata.name`."""

    field: str


Value = str | FromSecret | FromHost | FromPod


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable of the services' containers: its value per environment (None: not set there), and
    the services that get it. A string value may say `{service}`; `$(NAME)` is a Kubernetes reference
    to another variable of the container."""

    name: str
    local: Value | None = None
    production: Value | None = None
    services: tuple[str, ...] = SERVICES
    setting: bool = True  # read by Settings (else a helper another value refers to)

    def value(self, environment: str, service: str) -> Value | None:
        """Its value for `service` in `environment`, `{service}` filled in."""
        value = self.local if environment == "local" else self.production
        if service not in self.services:
            return None
        if isinstance(value, str):
            return value.format(service=service)
        if isinstance(value, FromSecret):
            return FromSecret(value.secret.format(service=service), value.key.format(service=service), value.shape)
        return value

    @property
    def secret(self) -> bool:
        return isinstance(self.local, FromHost) or isinstance(self.production, FromSecret)


_P = ("policy",)
_N = ("notification",)

VARIABLES: tuple[Variable, ...] = (
    #        name                             local (compose)          production (Kubernetes)
    Variable("CW_ENVIRONMENT",                "local",                 "production"),
    Variable("CW_INSTANCE_ID",                None,                    FromPod("metadata.name")),
    # Kafka: PLAINTEXT in compose; Strimzi's TLS listener, a SCRAM principal per service (kafka-users.yaml)
    Variable("KAFKA_BOOTSTRAP_SERVERS",       "kafka:19092",           "creditwindow-kafka-bootstrap:9093"),
    Variable("CW_KAFKA_SECURITY_PROTOCOL",    None,                    "SASL_SSL"),
    Variable("CW_KAFKA_SASL_MECHANISM",       None,                    "SCRAM-SHA-512"),
    Variable("CW_KAFKA_SASL_USERNAME",        None,                    "{service}"),
    Variable("CW_KAFKA_SASL_PASSWORD",        None,                    FromSecret("{service}", "password", Shape.PASSWORD)),
    Variable("CW_KAFKA_SSL_CAFILE",           None,                    "/etc/creditwindow/kafka-ca/ca.crt"),
    Variable("CW_TOPIC_REPLICATION_FACTOR",   None,                    "3"),
    Variable("CW_TOPIC_MIN_INSYNC_REPLICAS",  None,                    "2"),
    Variable("CW_TOPIC_PARTITIONS",           None,                    "6"),
    # Redis: no password in compose; TLS and an ACL user per service behind the Sentinel-aware proxy
    Variable("REDIS_PASSWORD",                None,                    FromSecret("creditwindow-redis", "{service}-password", Shape.PASSWORD), setting=False),
    Variable("REDIS_URL",                     "redis://redis:6379/0",  "rediss://{service}:$(REDIS_PASSWORD)@creditwindow-redis-master:6379/0"),
    Variable("CW_REDIS_SSL_CA_CERTS",         None,                    "/etc/creditwindow/redis-ca/ca.crt"),
    Variable("CW_REDIS_MIN_REPLICAS",         None,                    "1"),
    # listeners and logs
    Variable("CW_HTTP_HOST",                  "0.0.0.0",               "0.0.0.0"),
    Variable("CW_API_HOST",                   "0.0.0.0",               "0.0.0.0"),
    Variable("CW_LOG_FORMAT",                 "json",                  "json"),
    Variable("CW_LOG_LEVEL",                  None,                    "INFO"),
    # keys: compose runs the settings' development policy key (local only)
    Variable("CW_POLICY_SIGNING_KEY",         None,                    FromSecret("creditwindow-keys", "policy-signing-key", Shape.KEY), services=_P),
    Variable("CW_API_TOKENS",                 FromHost(Shape.TOKENS),  FromSecret("creditwindow-keys", "api-tokens", Shape.TOKENS), services=_P),
    Variable("CW_WEBHOOK_PARTNERS",           None,                    FromSecret("creditwindow-keys", "webhook-partners", Shape.PARTNERS), services=_N),
)  # fmt: skip


def variables_of(service: str, environment: str) -> dict[str, Value]:
    """The variables `service`'s container gets in `environment`, with their values."""
    out = {}
    for variable in VARIABLES:
        value = variable.value(environment, service)
        if value is not None:
            out[variable.name] = value
    return out
