"""Where a process runs, and what it refuses to start with there. Pure: settings in, problems out.

`CW_ENVIRONMENT` is `local` (a laptop, the demo), `test` (the test suite, CI) or `production`.
Outside local and test, every service and the operators' CLI refuse to start when:

- a policy key of the ring, a partner's webhook key or an API token is a development key from this
  repository, or shorter than 32 bytes (an HMAC key or a bearer token anyone can guess);
- a partner's webhook is not https (its signature would travel beside the decision in clear);
- created topics would have one replica (a broker lost is a decision log lost);
- the clock is moved off the system's (`CW_CLOCK_OFFSET_S`: for tests at other dates only).

Each problem names the variable to set; none shows a secret.
"""

from __future__ import annotations

from shared.settings import DEV_SIGNING_KEY, Settings

__all__ = ["MIN_KEY_BYTES", "UnsafeEnvironment", "check_environment", "environment_problems"]

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


def environment_problems(settings: Settings) -> list[str]:
    """What keeps these settings from running in their environment (nothing in local and test)."""
    if settings.environment in RELAXED:
        return []
    found: list[str | None] = []
    if settings.policy_signing_keys:
        for key_id, key in sorted(settings.policy_signing_keys.items()):
            found.append(_key_problem("CW_POLICY_SIGNING_KEYS", f"key {key_id!r}", key.get_secret_value()))
    else:
        found.append(
            _key_problem(
                "CW_POLICY_SIGNING_KEYS",
                f"the policy key {settings.policy_signing_key_id!r} (CW_POLICY_SIGNING_KEY)",
                settings.policy_signing_key.get_secret_value(),
            )
        )
    for name, partner in sorted(settings.webhook_partners.items()):
        found.append(_key_problem("CW_WEBHOOK_PARTNERS", f"the key of partner {name!r}", partner.key.get_secret_value()))
        if not partner.url.lower().startswith("https://"):
            found.append(f"CW_WEBHOOK_PARTNERS: partner {name!r} has a webhook URL that is not https")
    for name, token in sorted(settings.api_tokens.items()):
        found.append(_key_problem("CW_API_TOKENS", f"the token of {name!r}", token.get_secret_value()))
    if settings.topic_replication_factor < 2:
        found.append(
            f"CW_TOPIC_REPLICATION_FACTOR: {settings.topic_replication_factor} keeps one copy of each topic; "
            "set 3 (with min.insync.replicas 2 on the cluster)"
        )
    if settings.clock_offset_s:
        found.append("CW_CLOCK_OFFSET_S: the fleet's clock is moved off the system's; unset it (tests at other dates only)")
    return [problem for problem in found if problem]


def check_environment(settings: Settings) -> None:
    """Raise UnsafeEnvironment naming every problem; return quietly when the settings may run."""
    problems = environment_problems(settings)
    if problems:
        raise UnsafeEnvironment(settings.environment, problems)
