"""Operator actions on the policy: sign a document into a `PolicyUpdated`, publish it, read the active one."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime

from services.policy.control import Accepted, check_update
from services.policy.document import PolicyDocument, load_policy, parse_policy
from shared.contracts import PolicyUpdated
from shared.messaging.topic_io import Publisher, TopicReader
from shared.settings import Settings
from shared.signing import sign_policy

__all__ = ["active_policy", "diff_documents", "publish_update", "signed_update"]


def signed_update(document_text: str, settings: Settings, *, issued_by: str = "operator") -> PolicyUpdated:
    """Validate the document (PolicyError names the field) and sign it with the configured key."""
    document = parse_policy(document_text)
    fields = {
        "policy_name": document.name,
        "version": document.version,
        "document": document_text,
        "issued_by": issued_by,
        "issued_at": datetime.now(UTC),
        "key_id": settings.policy_signing_key_id,
    }
    signature = sign_policy(settings.policy_signing_key.get_secret_value().encode(), **fields)
    return PolicyUpdated(
        correlation_id=f"policy-{document.name}-{document.version}", producer="creditwindow-cli", signature=signature, **fields  # type: ignore[arg-type]
    )


async def publish_update(update: PolicyUpdated, settings: Settings) -> int:
    """Publish a signed update and wait for the broker; returns its offset on the policy topic."""
    async with Publisher(settings) as publisher:
        metadata = await (await publisher.send(settings.topics.policy, update))
    return int(metadata.offset)


async def active_policy(settings: Settings) -> tuple[PolicyDocument, str]:
    """The policy the fleet runs: the shipped default, replaced by each valid signed update in order."""
    active = load_policy(settings.policy_path)
    source = f"file:{settings.policy_path.name}"
    key = settings.policy_signing_key.get_secret_value().encode()
    async with TopicReader(settings, [settings.topics.policy]) as reader:
        for item in await reader.drain(idle_s=0.5, timeout_s=30):
            if isinstance(item.event, PolicyUpdated):
                checked = check_update(item.event, active, key=key, key_id=settings.policy_signing_key_id)
                if isinstance(checked, Accepted):
                    active = checked.document
                    source = f"{settings.topics.policy}@{item.record.offset}"
    return active, source


def diff_documents(old: PolicyDocument, new: PolicyDocument) -> list[str]:
    """A unified diff of two policy versions, field by field (normalised YAML)."""
    import yaml

    def lines(doc: PolicyDocument) -> list[str]:
        return yaml.safe_dump(doc.model_dump(mode="json"), sort_keys=True, allow_unicode=True).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), fromfile=old.label, tofile=new.label, lineterm=""))
