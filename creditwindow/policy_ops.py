"""Operator actions on the policy: sign a document into a `PolicyUpdated`, publish it, read the active one."""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta

from services.policy.control.checks import Accepted, Refused, check_update
from services.policy.control.document import PolicyDocument, load_policy, parse_policy
from shared.contracts import PolicyUpdated
from shared.messaging.topic_io import Publisher, TopicReader
from shared.settings import Settings
from shared.signing import sign_policy

__all__ = ["active_policy", "check_as_the_fleet", "diff_documents", "policy_versions", "publish_update", "signed_update"]


def signed_update(
    document_text: str, settings: Settings, *, issued_by: str = "operator", issued_at: datetime | None = None
) -> PolicyUpdated:
    """Validate the document (PolicyError names the field) and sign it with the ring's signing key,
    for this fleet's namespace. SigningRefused when that key is retired or missing."""
    document = parse_policy(document_text)
    key_id, key = settings.policy_key_ring.signing_key()
    fields = {
        "policy_name": document.name,
        "version": document.version,
        "document": document_text,
        "issued_by": issued_by,
        "issued_at": issued_at or settings.clock().now(),
        "key_id": key_id,
        "namespace": settings.topic_namespace,
    }
    signature = sign_policy(key, **fields)
    return PolicyUpdated(
        correlation_id=f"policy-{document.name}-{document.version}", producer="creditwindow-cli", signature=signature, **fields  # type: ignore[arg-type]
    )


def check_as_the_fleet(update: PolicyUpdated, active: PolicyDocument, settings: Settings) -> Accepted | Refused:
    """The check every policy replica runs on `update` (control.check_update with this fleet's ring and namespace)."""
    return check_update(
        update,
        active,
        ring=settings.policy_key_ring,
        namespace=settings.topic_namespace,
        now=settings.clock().now(),
        max_skew=timedelta(seconds=settings.policy_max_clock_skew_s),
    )


async def publish_update(update: PolicyUpdated, settings: Settings) -> int:
    """Publish a signed update and wait for the broker; returns its offset on the policy topic."""
    async with Publisher(settings) as publisher:
        metadata = await (await publisher.send(settings.topics.policy, update))
    return int(metadata.offset)


async def _history(settings: Settings) -> tuple[PolicyDocument, str, dict[str, PolicyDocument]]:
    active = load_policy(settings.policy_path)
    source = f"file:{settings.policy_path.name}"
    versions = {active.label: active}
    async with TopicReader(settings, [settings.topics.policy]) as reader:
        for item in await reader.drain(idle_s=0.5, timeout_s=30):
            if isinstance(item.event, PolicyUpdated):
                checked = check_as_the_fleet(item.event, active, settings)
                if isinstance(checked, Accepted):
                    active = checked.document
                    source = f"{settings.topics.policy}@{item.record.offset}"
                    versions[active.label] = active
    return active, source, versions


async def active_policy(settings: Settings) -> tuple[PolicyDocument, str]:
    """The policy the fleet runs: the shipped default, replaced by each valid signed update in order."""
    active, source, _ = await _history(settings)
    return active, source


async def policy_versions(settings: Settings) -> dict[str, PolicyDocument]:
    """Every version the fleet applied, by label (`default@3`): a decision is verified with its own."""
    return (await _history(settings))[2]


def diff_documents(old: PolicyDocument, new: PolicyDocument) -> list[str]:
    """A unified diff of two policy versions, field by field (normalised YAML)."""
    import yaml

    def lines(doc: PolicyDocument) -> list[str]:
        return yaml.safe_dump(doc.model_dump(mode="json"), sort_keys=True, allow_unicode=True).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), fromfile=old.label, tofile=new.label, lineterm=""))
