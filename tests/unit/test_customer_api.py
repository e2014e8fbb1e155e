"""Customer-data endpoints ask who is calling: bearer tokens, one refusal for everyone, a rate limit per token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from shared.access import RateLimiter, TokenBucket, caller_of
from shared.customer_api import CustomerApi, Reply

TOKENS = {"ops-console": "tok-ops-0123456789abcdef0123456789", "partner-bank": "tok-bank-abcdef0123456789abcdef0123"}
KNOWN = "cus_known_000001"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def limits(customer_id: str) -> Reply:
    if customer_id == KNOWN:
        return 200, {"customer_id": customer_id, "status": "open", "limit": 30_000, "apr": 0.1095}
    return 404, {"customer_id": customer_id, "status": "none"}


class AuditLog:
    """Records what the API logs, as structlog would receive it."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.entries.append({"event": event, "level": "info", **fields})

    def warning(self, event: str, **fields: Any) -> None:
        self.entries.append({"event": event, "level": "warning", **fields})


def client(clock: Clock | None = None, *, rate: float = 5.0, burst: int = 3, audit: AuditLog | None = None) -> httpx.AsyncClient:
    api = CustomerApi(
        [("/limits/", "/limits/{customer_id}", limits)],
        tokens=TOKENS,
        limiter=RateLimiter(rate_per_s=rate, burst=burst),
        clock=clock or Clock(),
        audit=audit or AuditLog(),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api")


def bearer(token: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "caller"),
    [
        ("Bearer tok-ops-0123456789abcdef0123456789", "ops-console"),
        ("bearer   tok-bank-abcdef0123456789abcdef0123 ", "partner-bank"),
        ("Bearer tok-ops-0123456789abcdef012345678", None),  # one character short
        ("Basic tok-ops-0123456789abcdef0123456789", None),
        ("tok-ops-0123456789abcdef0123456789", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_a_caller_is_known_by_its_tokens_name_only_for_an_exact_bearer_token(header: str | None, caller: str | None) -> None:
    assert caller_of(header, TOKENS) == caller


def test_no_configured_token_lets_nobody_in() -> None:
    assert caller_of("Bearer ", {}) is None and caller_of("Bearer anything", {"empty": ""}) is None


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, capacity=3.0, tokens=3.0, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one more in half a second
    assert bucket.take(0.5) == 0.0
    assert bucket.take(10.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # refilled to the burst, not past it


def test_each_token_has_its_own_limit() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.wait_s("a", 0.0) == 0.0 and limiter.wait_s("a", 0.0) > 0
    assert limiter.wait_s("b", 0.0) == 0.0
    assert RateLimiter.retry_after(0.2) == 1 and RateLimiter.retry_after(2.1) == 3


# --- the API ---------------------------------------------------------------------------------------


async def test_without_a_valid_token_known_and_unknown_customers_get_the_same_401() -> None:
    answers = []
    async with client() as api:
        for headers in ({}, bearer("wrong"), {"Authorization": "Basic eDp5"}, bearer(TOKENS["ops-console"] + "x")):
            for customer in (KNOWN, "cus_nobody_000001"):
                answers.append(await api.get(f"/limits/{customer}", headers=headers))
        answers.append(await api.get("/anything-else", headers=bearer("wrong")))
    assert {a.status_code for a in answers} == {401}
    assert len({(a.content, tuple(sorted(a.headers.items()))) for a in answers}) == 1  # byte for byte the same
    assert answers[0].headers["www-authenticate"] == 'Bearer realm="creditwindow"'
    assert answers[0].json() == {"error": "unauthorized"}


async def test_with_a_token_a_known_customer_gets_the_window_and_an_unknown_one_404() -> None:
    async with client(burst=10) as api:
        found = await api.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["ops-console"]))
        missing = await api.get("/limits/cus_nobody_000001", headers=bearer(TOKENS["ops-console"]))
        posted = await api.post(f"/limits/{KNOWN}", headers=bearer(TOKENS["ops-console"]))
        elsewhere = await api.get("/metrics", headers=bearer(TOKENS["ops-console"]))
    assert found.status_code == 200 and found.json()["limit"] == 30_000 and found.headers["cache-control"] == "no-store"
    assert missing.status_code == 404
    assert posted.status_code == 405 and elsewhere.status_code == 404


async def test_each_token_is_rate_limited_with_a_retry_after() -> None:
    clock = Clock()
    async with client(clock, rate=2.0, burst=3) as api:
        ops = [(await api.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["ops-console"]))).status_code for _ in range(4)]
        limited = await api.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["ops-console"]))
        other = await api.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["partner-bank"]))
        clock.now += 0.5
        again = await api.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["ops-console"]))
    assert ops == [200, 200, 200, 429]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1" and limited.json() == {"error": "rate_limited"}
    assert other.status_code == 200  # another caller's budget is its own
    assert again.status_code == 200


async def test_the_audit_log_names_the_caller_never_the_token() -> None:
    audit = AuditLog()
    async with client(audit=audit) as api:
        await api.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["partner-bank"]))
        await api.get(f"/limits/{KNOWN}", headers=bearer("guess-0001"))
    logs = audit.entries
    request = next(entry for entry in logs if entry["event"] == "api_request")
    assert (request["caller"], request["route"], request["customer_id"], request["status"]) == (
        "partner-bank", "/limits/{customer_id}", KNOWN, 200,
    )  # fmt: skip
    refused = next(entry for entry in logs if entry["event"] == "api_refused")
    assert refused["status"] == 401 and refused["why"] == "invalid"
    text = repr(logs)
    assert all(token not in text for token in TOKENS.values()) and "guess-0001" not in text


async def test_the_policy_services_own_listener_serves_no_customer_data() -> None:
    from services.policy.app import create_app
    from shared.settings import Settings

    app: Any = create_app(Settings(log_format="json", api_tokens={"ops": TOKENS["ops-console"]}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as svc:
        answer = await svc.get(f"/limits/{KNOWN}", headers=bearer(TOKENS["ops-console"]))
    assert answer.status_code == 404
