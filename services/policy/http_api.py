"""The policy service's routes on the customer-data API (bearer tokens only, a listener of its own):

- `GET /limits/{customer_id}`: the customer's current window and balance, as the book holds them;
- `GET /explanations/{reference}`: a decision explained (`record.explanation.explain`). This service
  serves it because it holds what explains a decision: every policy version it applied, and the
  index from references to the decision log; the message as sent is read back from
  `credit.notifications`.
"""

from __future__ import annotations

from services.policy.control.state import PolicyState
from services.policy.record.explanation import explain, no_decision
from services.policy.record.ports import DecisionArchive
from services.policy.windows.ports import BookReader
from shared.customer_api import ApiListener, CustomerApi, Reply
from shared.references import normalise_reference
from shared.settings import Settings

__all__ = ["customer_api", "explanation_reply", "limits_reply"]


async def limits_reply(customer_id: str, book: BookReader) -> Reply:
    """`GET /limits/{customer_id}`: the current window (404 when the book holds nothing of the customer)."""
    window = await book.current(customer_id)
    if window is None:
        return 404, {"customer_id": customer_id, "status": "none"}
    return 200, window.as_dict()


async def explanation_reply(reference_text: str, archive: DecisionArchive, state: PolicyState) -> Reply:
    """`GET /explanations/{reference}`: a decision explained (404, the same body, for an unknown
    reference and for a malformed one)."""
    reference = normalise_reference(reference_text)
    decision = await archive.decision(reference) if reference else None
    if decision is None:
        return 404, no_decision(reference or reference_text[:40])
    score = await archive.score(decision)
    messages = await archive.notices(decision)
    return 200, explain(decision, score, state.versions.get(decision.policy_version), messages).as_dict()


def customer_api(settings: Settings, book: BookReader, archive: DecisionArchive, state: PolicyState) -> ApiListener:
    """The listener (`CW_API_HOST`:`CW_POLICY_API_PORT`) with both routes."""

    async def limits(customer_id: str) -> Reply:
        return await limits_reply(customer_id, book)

    async def explanations(reference: str) -> Reply:
        return await explanation_reply(reference, archive, state)

    routes = [("/limits/", "/limits/{customer_id}", limits), ("/explanations/", "/explanations/{reference}", explanations)]
    return ApiListener(CustomerApi.from_settings(settings, routes), host=settings.api_host, port=settings.policy_api_port)
