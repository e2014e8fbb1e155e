"""Where a process runs, and what it refuses to start with there. Pure: settings in, problems out.

`CW_ENVIRONMENT` is `local` (a laptop, the demo), `test` (the test suite, CI) or `production`. A
service refuses to start unless it is named (`check_named_environment`): a deployment that forgot
it must not run as `local`. The dev CLI, the demo, the fleet supervisor (devtools/fleet.py) and the
test suite name it themselves. Outside local and test, every service and the operators' CLI refuse
to start when:

- a policy key of the ring, a partner's webhook key or an API token is a development key from this
  repository, or shorter than 32 bytes (an HMAC key or a bearer token anyone can guess); the policy
  key is checked where it is used (the policy, its shadow, the CLI) or wherever it is set;
- a partner's webhook is not https (its signature would travel beside the decision in clear);
- Kafka is not SASL_SSL with a user and a password (anyone on the network could read decisions,
  or write them as the fleet);
- Redis has no password, no ACL user of its own (a user other than `default`), or no TLS
  (`rediss://`): the book and the budgets would be open to anything that reaches the port;
- created topics would have one replica (a broker lost is a decision log lost);
- the clock is moved off the system's (`CW_CLOCK_OFFSET_S`: for tests at other dates only).

Each problem names the variable to set; none shows a secret.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.settings import DEV_SIGNING_KEY, Settings

__all__ = ["MIN_KEY_BYTES", "UnsafeEnvironment", "check_environment", "check_named_environment", "environment_problems"]

MIN_KEY_BYTES = 32
RELAXED = frozenset({"local", "test"})
# Keys that were once the repository's defaults: public, so never accepted where it matters.
_DEVELOPMENT_KEYS = frozenset({DEV_SIGNING_KEY, "creditwindow-local-webhook-key"})


class UnsafeEnvironment(RuntimeError):
    """Settings that must not run outside local and test; the message lists each problem."""

    def __init__(self, environment: str, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"refusing to start in CW_ENVIRONMENT={environment}:\n{listed}")


def _key_problem(variable: str, what: str, secret: str) -> str | None:
    if secret in _DEVELOPMENT_KEYS:
        return f"{variable}: {what} is the development key published in the repository; set a key of your own"
    size = len(secret.encode("utf-8"))
    if size < MIN_KEY_BYTES:
        return f"{variable}: {what} is {size} bytes; use at least {MIN_KEY_BYTES} random bytes"
    return None


def _kafka_problems(settings: Settings) -> list[str]:
    if settings.kafka_security_protocol != "SASL_SSL":
        return [
            f"CW_KAFKA_SECURITY_PROTOCOL: {settings.kafka_security_protocol} lets anyone on the network read or write "
            "the fleet's topics; set SASL_SSL, with CW_KAFKA_SASL_USERNAME, CW_KAFKA_SASL_PASSWORD and CW_KAFKA_SSL_CAFILE"
        ]
    found = []
    if not settings.kafka_sasl_username:
        found.append("CW_KAFKA_SASL_USERNAME: not set; set this process's own Kafka principal")
    if settings.kafka_sasl_password is None or not settings.kafka_sasl_password.get_secret_value():
        found.append("CW_KAFKA_SASL_PASSWORD: not set; set the password of the principal in CW_KAFKA_SASL_USERNAME")
    return found


def _redis_problems(settings: Settings) -> list[str]:
    # With Sentinels the master's address comes from them, but REDIS_URL still gives the user, the
    # password and TLS (shared/redis_connection.py).
    url = urlsplit(settings.redis_dsn)
    found = []
    if url.scheme != "rediss":
        found.append(
            "REDIS_URL: redis:// sends the book and its password in clear; use rediss:// "
            "(CW_REDIS_SSL_CA_CERTS names the CA when it is your own)"
        )
    if not url.password:
        found.append("REDIS_URL: no password; give this process's ACL user and password: rediss://USER:PASSWORD@HOST:PORT/DB")
    if not url.username or url.username == "default":
        found.append("REDIS_URL: no ACL user (or `default`); give each service a user of its own: rediss://USER:PASSWORD@HOST:PORT/DB")
    return found


def _policy_key_problems(settings: Settings) -> list[str | None]:
    if settings.policy_signing_keys:
        return [
            _key_problem("CW_POLICY_SIGNING_KEYS", f"key {key_id!r}", key.get_secret_value())
            for key_id, key in sorted(settings.policy_signing_keys.items())
        ]
    return [
        _key_problem(
            "CW_POLICY_SIGNING_KEYS",
            f"the policy key {settings.policy_signing_key_id!r} (CW_POLICY_SIGNING_KEY)",
            settings.policy_signing_key.get_secret_value(),
        )
    ]


def environment_problems(settings: Settings, *, policy_keys: bool = True) -> list[str]:
    """What keeps these settings from running in their environment (nothing in local and test).

    `policy_keys`: the process signs or verifies policy updates (the policy, its shadow, the CLI).
    A process that does not (scoring, notification) needs no policy key, but one set is checked.
    """
    if settings.environment in RELAXED:
        return []
    found: list[str | None] = []
    if policy_keys or settings.policy_signing_keys or "policy_signing_key" in settings.model_fields_set:
        found += _policy_key_problems(settings)
    for name, partner in sorted(settings.webhook_partners.items()):
        found.append(_key_problem("CW_WEBHOOK_PARTNERS", f"the key of partner {name!r}", partner.key.get_secret_value()))
        if not partner.url.lower().startswith("https://"):
            found.append(f"CW_WEBHOOK_PARTNERS: partner {name!r} has a webhook URL that is not https")
    for name, token in sorted(settings.api_tokens.items()):
        found.append(_key_problem("CW_API_TOKENS", f"the token of {name!r}", token.get_secret_value()))
    found += _kafka_problems(settings)
    found += _redis_problems(settings)
    if settings.topic_replication_factor < 2:
        found.append(
            f"CW_TOPIC_REPLICATION_FACTOR: {settings.topic_replication_factor} keeps one copy of each topic; "
            "set 3 (with min.insync.replicas 2 on the cluster)"
        )
    if settings.clock_offset_s:
        found.append("CW_CLOCK_OFFSET_S: the fleet's clock is moved off the system's; unset it (tests at other dates only)")
    return [problem for problem in found if problem]


def check_environment(settings: Settings, *, policy_keys: bool = True) -> None:
    """Raise UnsafeEnvironment naming every problem; return quietly when the settings may run."""
    problems = environment_problems(settings, policy_keys=policy_keys)
    if problems:
        raise UnsafeEnvironment(settings.environment, problems)


def check_named_environment(settings: Settings) -> None:
    """A service says where it runs: CW_ENVIRONMENT set, not left at its default (UnsafeEnvironment)."""
    if not settings.environment_named:
        raise UnsafeEnvironment(
            "(unset)",
            [
                "CW_ENVIRONMENT: not set; set production where the fleet is deployed, or local or test "
                "(the dev CLI, the demo and the test suite set it themselves)"
            ],
        )
