"""Operator actions on the policy: sign a document into a `PolicyUpdated`, publish it, read the active one.

`control_log` reads `credit.policy` as every policy replica does (`control.updates.read_control`):
the active version, every version applied, and the operators' ring with the signed retirements.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from creditwindow.key_ops import signing_key
from services.policy.control.checks import Accepted, Refused, Retirement, Signatures, check_update
from services.policy.control.document import PolicyDocument, load_policy, parse_policy
from services.policy.control.updates import read_control
from shared.contracts import PolicyUpdated
from shared.messaging.topic_io import Publisher, TopicReader
from shared.settings import Settings
from shared.signing import policy_bytes

__all__ = [
    "ControlLog",
    "active_policy",
    "check_as_the_fleet",
    "control_log",
    "diff_documents",
    "policy_versions",
    "publish_update",
    "signed_update",
]


def signed_update(
    document_text: str, settings: Settings, *, issued_by: str = "operator", issued_at: datetime | None = None
) -> PolicyUpdated:
    """Validate the document (PolicyError names the field) and sign it with this operator's key, for
    this fleet's namespace. SigningRefused when there is no key to sign with, or the ring refuses it."""
    document = parse_policy(document_text)
    key = signing_key(settings)
    fields = {
        "policy_name": document.name,
        "version": document.version,
        "document": document_text,
        "issued_by": issued_by,
        "issued_at": issued_at or settings.clock().now(),
        "key_id": key.key_id,
        "namespace": settings.topic_namespace,
    }
    signature = key.sign(policy_bytes(**fields))  # type: ignore[arg-type]
    return PolicyUpdated(
        correlation_id=f"policy-{document.name}-{document.version}", producer="creditwindow-cli", signature=signature, **fields  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class ControlLog:
    """`credit.policy` as every policy replica reads it: the active version and where it came from,
    every version applied (by label), and the ring with the signed retirements applied."""

    active: PolicyDocument
    source: str
    signatures: Signatures
    versions: dict[str, PolicyDocument] = field(default_factory=dict)
    retirements: list[tuple[Retirement, int]] = field(default_factory=list)  # each with its offset


def _signatures(settings: Settings) -> Signatures:
    return Signatures(settings.operator_ring, settings.topic_namespace, timedelta(seconds=settings.policy_max_clock_skew_s))


def check_as_the_fleet(update: PolicyUpdated, control: ControlLog, settings: Settings) -> Accepted | Refused:
    """The check every policy replica runs on `update` if it reached the log now (control.check_update
    with this fleet's ring, its retirements and namespace)."""
    s = control.signatures
    return check_update(
        update, control.active, ring=s.ring, namespace=s.namespace, logged_at=settings.clock().now(), max_skew=s.max_skew,
        environment=settings.environment,
    )  # fmt: skip


async def publish_update(update: PolicyUpdated, settings: Settings) -> int:
    """Publish a signed update and wait for the broker; returns its offset on the policy topic."""
    async with Publisher(settings) as publisher:
        metadata = await (await publisher.send(settings.topics.policy, update))
    return int(metadata.offset)


async def control_log(settings: Settings) -> ControlLog:
    """The shipped default, replaced by each valid signed update in order; each valid retirement applied."""
    active = load_policy(settings.policy_path)
    control = ControlLog(active, f"file:{settings.policy_path.name}", _signatures(settings), {active.label: active})
    now = settings.clock().now()
    async with TopicReader(settings, [settings.topics.policy]) as reader:
        for item in await reader.drain(idle_s=0.5, timeout_s=30):
            verdict = read_control(item.record, control.active, control.signatures, now, settings.environment)
            if isinstance(verdict, Accepted):
                control.active, control.source = verdict.document, f"{settings.topics.policy}@{item.record.offset}"
                control.versions[verdict.document.label] = verdict.document
            elif isinstance(verdict, Retirement):
                control.signatures.ring = control.signatures.ring.retire(verdict.key_id, verdict.at)
                control.retirements.append((verdict, item.record.offset))
    return control


async def active_policy(settings: Settings) -> tuple[PolicyDocument, str]:
    """The policy the fleet runs: the shipped default, replaced by each valid signed update in order."""
    control = await control_log(settings)
    return control.active, control.source


async def policy_versions(settings: Settings) -> dict[str, PolicyDocument]:
    """Every version the fleet applied, by label (`default@3`): a decision is verified with its own."""
    return (await control_log(settings)).versions


def diff_documents(old: PolicyDocument, new: PolicyDocument) -> list[str]:
    """A unified diff of two policy versions, field by field (normalised YAML)."""
    import yaml

    def lines(doc: PolicyDocument) -> list[str]:
        return yaml.safe_dump(doc.model_dump(mode="json"), sort_keys=True, allow_unicode=True).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), fromfile=old.label, tofile=new.label, lineterm=""))
