"""The webhook's HTTP adapter (httpx): one POST per try, bounded in time, the answer's status only."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from services.notification.ports import Answer

__all__ = ["HttpWebhookSender"]


def _retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form: an HTTP date would need the partner's clock to agree with ours.
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class HttpWebhookSender:
    """POSTs with a connect/read/write timeout each and a hard bound on the whole try.

    The response body is never read: a partner cannot make us download megabytes, and nothing in it
    is needed. Redirects are not followed (a partner configures its final URL), and the environment's
    proxy settings are not used: partner traffic goes where the configuration says.
    """

    def __init__(self, *, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": "creditwindow-notification/1"},
            transport=transport,
        )

    @property
    def attempt_bound_s(self) -> float:
        """The longest one try can take (a dispatcher's lease must outlast it)."""
        return self.timeout_s * 2

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        try:
            async with asyncio.timeout(self.attempt_bound_s):
                async with self._client.stream("POST", url, content=body, headers=dict(headers)) as response:
                    return Answer(response.status_code, retry_after_s=_retry_after(response.headers.get("retry-after")))
        except (httpx.TimeoutException, TimeoutError):
            return Answer(None, f"timeout after {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            # The exception's text can carry the URL, which may hold a partner's secret: not kept.
            return Answer(None, f"{type(exc).__name__}: {str(exc).replace(url, '<url>')[:160]}")

    async def aclose(self) -> None:
        await self._client.aclose()
