"""Where a process runs, and what it refuses to start with there. Pure: settings in, problems out.

`CW_ENVIRONMENT` is `local` (a laptop, the demo), `test` (the test suite, CI) or `production`. A
service refuses to start unless it is named (`check_named_environment`): a deployment that forgot
it must not run as `local`. The dev CLI, the demo, the fleet supervisor (devtools/fleet.py) and the
test suite name it themselves. Outside local and test, every service and the operators' CLI refuse
to start when:

- a service of the fleet is given an operator's private key (CW_OPERATOR_PRIVATE_KEY or its _FILE):
  the fleet holds public keys only, so no replica can sign a policy or an action;
- the operators' public ring is empty or has the development key of this repository (anyone could
  sign with it); it is checked where it is used (the policy, its shadow, the CLI) or wherever it is set;
- a partner's webhook key or an API token is a development key from this repository, or shorter than
  32 bytes (an HMAC key or a bearer token anyone can guess);
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

from shared.settings import DEV_OPERATOR_PUBLIC_KEY, Settings

__all__ = ["MIN_KEY_BYTES", "UnsafeEnvironment", "check_environment", "check_named_environment", "environment_problems"]

MIN_KEY_BYTES = 32
RELAXED = frozenset({"local", "test"})
# Keys that were once the repository's defaults: public, so never accepted where it matters.
_DEVELOPMENT_KEYS = frozenset({"creditwindow-local-dev-signing-key-not-for-production", "creditwindow-local-webhook-key"})


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


def _operator_key_problems(settings: Settings, *, operator_keys: bool, service: bool) -> list[str | None]:
    found: list[str | None] = []
    if service and settings.operator_key_given:
        given = [name for name, value in (("CW_OPERATOR_PRIVATE_KEY", settings.operator_private_key),
                                          ("CW_OPERATOR_PRIVATE_KEY_FILE", settings.operator_private_key_file)) if value is not None]  # fmt: skip
        found.append(
            f"{', '.join(given)}: a service of the fleet holds the operators' public keys only (CW_OPERATOR_PUBLIC_KEYS); "
            "remove the private key from its environment: whoever holds it can sign policies"
        )
    if operator_keys or "operator_public_keys" in settings.model_fields_set:
        if operator_keys and not settings.operator_public_keys:
            found.append("CW_OPERATOR_PUBLIC_KEYS: empty; no policy update or operator action would be accepted: set the operators' public keys")
        found += [
            f"CW_OPERATOR_PUBLIC_KEYS: key {key_id!r} is the development key published in the repository (anyone can sign "
            "with it); set your operators' public keys (`creditwindow keys new`)"
            for key_id, key in sorted(settings.operator_public_keys.items())
            if key.public_key == DEV_OPERATOR_PUBLIC_KEY
        ]
    return found


def environment_problems(settings: Settings, *, operator_keys: bool = True, service: bool = False) -> list[str]:
    """What keeps these settings from running in their environment (nothing in local and test).

    `operator_keys`: the process verifies operators' signatures (the policy, its shadow, the CLI).
    A process that does not (scoring, notification) needs no ring, but one set is checked.
    `service`: the process is a service of the fleet, which never holds a private key.
    """
    if settings.environment in RELAXED:
        return []
    found = _operator_key_problems(settings, operator_keys=operator_keys, service=service)
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


def check_environment(settings: Settings, *, operator_keys: bool = True, service: bool = False) -> None:
    """Raise UnsafeEnvironment naming every problem; return quietly when the settings may run."""
    problems = environment_problems(settings, operator_keys=operator_keys, service=service)
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
