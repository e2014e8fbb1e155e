"""The policy document: a versioned YAML file, validated here, applied through signed PolicyUpdated events.

Every number the policy service decides with lives in this document, so a decision can be explained
by naming the version it used, and a candidate can be simulated before it is applied.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.contracts import SEGMENTS, Segment

__all__ = [
    "Budget",
    "CustomerCare",
    "GradeTerms",
    "MaintenanceWindow",
    "Pacing",
    "PolicyDocument",
    "PolicyError",
    "Programme",
    "load_policy",
    "parse_policy",
]

GRADES = ("A", "B", "C", "D", "E", "F", "G")


class PolicyError(ValueError):
    """A policy document that does not validate; the message names each field and why."""


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


Money = Annotated[int, Field(ge=0, le=10_000_000_000)]
Rate = Annotated[float, Field(ge=0, le=1)]


class Knockouts(_Part):
    """Hard rules that close the window whatever the score (category `credit`)."""

    max_overdue_12m: int = Field(default=0, ge=0, description="More overdues than this in 12 months closes.")
    max_inquiries_3m: int = Field(default=4, ge=0, description="More hard inquiries than this in 3 months closes.")


class GradeTerms(_Part):
    """Limit and price for one risk grade."""

    income_multiple: float = Field(gt=0, le=5, description="Limit as a multiple of annual income.")
    max_limit: Money = Field(description="Largest limit for the grade, CNY.")
    apr: float = Field(gt=0, le=0.36, description="Annual percentage rate (at most 36%).")


class Regulatory(_Part):
    """Caps a person's limit may never exceed (category `regulatory` when they leave no room)."""

    income_fraction: float = Field(default=1 / 3, gt=0, le=1, description="Limit at most this share of annual income.")
    absolute_cap: Money = Field(default=200_000, description="Limit at most this amount per person, CNY.")


class Programme(_Part):
    """A segment programme: a limit boost with a budget of its own for the boosted part."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    segment: Segment
    boost: float = Field(gt=1, le=3, description="Multiplier on the grade limit.")
    budget: Money = Field(description="Exposure the boosted parts may take in total, CNY.")


class Pauses(_Part):
    """Strategy switches: no new windows here; open windows here are closed (category `strategy`)."""

    segments: tuple[Segment, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


class MaintenanceWindow(_Part):
    start: datetime
    end: datetime
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError("start and end need a time zone, e.g. 2026-12-01T02:00:00Z")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Budget(_Part):
    """A segment's portfolio budget for the period: total exposure and expected loss."""

    exposure: Money = Field(description="Sum of open windows' limits at most this, CNY.")
    expected_loss: Money = Field(description="Sum of limit x PD x LGD at most this, CNY.")


class Pacing(_Part):
    """A shadow price on the budget: the margin a window must earn rises as the budget fills.

    required margin = max_margin x utilisation ** steepness. At an empty budget any profitable window
    opens; near a full one only the most profitable do, so early marginal applicants cannot take
    the budget meant for better ones.
    """

    enabled: bool = True
    max_margin: float = Field(default=0.02, ge=0, le=1, description="Required margin at a full budget.")
    steepness: float = Field(default=0.5, gt=0, le=20)


class Pricing(_Part):
    """Expected profit per unit of limit = APR - funding cost - PD x LGD; a window opens only above zero."""

    funding_cost: Rate = 0.035
    lgd: Rate = Field(default=0.45, description="Loss given default.")


class Limits(_Part):
    min_limit: Money = Field(default=500, description="Smaller limits are not opened.")
    round_to: int = Field(default=100, ge=1, le=100_000)
    cap_at_requested: bool = Field(default=False, description="Never open more than the amount asked for.")


class Timing(_Part):
    """Durations as ISO 8601 (``P30D``, ``PT30M``) or seconds."""

    window_validity: timedelta = Field(default=timedelta(days=30), description="How long an opened window stays open.")
    strategy_retry: timedelta = Field(default=timedelta(hours=24), description="When to try again after a strategy closure.")
    system_retry: timedelta = Field(default=timedelta(minutes=30), description="When to try again after a system closure.")

    @model_validator(mode="after")
    def _positive(self) -> Self:
        for name in ("window_validity", "strategy_retry", "system_retry"):
            value = getattr(self, name)
            if value <= timedelta(0) or value > timedelta(days=366):
                raise ValueError(f"{name} must be between 1 second and 366 days")
        return self


class CustomerCare(_Part):
    """What customers are told beyond the decision, and how soon (issue 15). Durations as in `Timing`."""

    show_score: bool = Field(default=False, description="Tell customers their points and risk grade beside the cut-off.")
    review_within: timedelta = Field(default=timedelta(days=7), description="A review open longer than this is overdue.")
    delay_notice_after: timedelta = Field(
        default=timedelta(minutes=2),
        description="An application not decided within this because Redis or the broker is away gets one `system` notice.",
    )

    @model_validator(mode="after")
    def _positive(self) -> Self:
        for name in ("review_within", "delay_notice_after"):
            value = getattr(self, name)
            if value <= timedelta(0) or value > timedelta(days=366):
                raise ValueError(f"{name} must be between 1 second and 366 days")
        return self


class PolicyDocument(_Part):
    """A complete policy version."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    version: int = Field(ge=1)
    description: str = Field(default="", max_length=2000)
    cutoffs: dict[Segment, float] = Field(description="Minimum points per segment.")
    knockouts: Knockouts = Knockouts()
    grades: dict[Literal["A", "B", "C", "D", "E", "F", "G"], GradeTerms]
    regulatory: Regulatory = Regulatory()
    cycle_factor: float = Field(default=1.0, gt=0, le=2, description="Macro cycle: <1 tightens, >1 loosens all limits.")
    programmes: tuple[Programme, ...] = ()
    pauses: Pauses = Pauses()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    budgets: dict[Segment, Budget]
    pacing: Pacing = Pacing()
    pricing: Pricing = Pricing()
    limits: Limits = Limits()
    timing: Timing = Timing()
    customer_care: CustomerCare = CustomerCare()

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = [s for s in SEGMENTS if s not in self.cutoffs]
        if missing:
            raise ValueError(f"cutoffs: missing segment(s) {missing}")
        missing = [s for s in SEGMENTS if s not in self.budgets]
        if missing:
            raise ValueError(f"budgets: missing segment(s) {missing}")
        missing = [g for g in GRADES if g not in self.grades]
        if missing:
            raise ValueError(f"grades: missing grade(s) {missing}")
        names = [p.name for p in self.programmes]
        if len(names) != len(set(names)):
            raise ValueError("programmes: names must be unique")
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def programme_for(self, segment: str) -> Programme | None:
        return next((p for p in self.programmes if p.segment == segment), None)


def parse_policy(text: str) -> PolicyDocument:
    """Parse and validate YAML text; PolicyError names each bad field and why."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError("a policy is a YAML mapping (name, version, cutoffs, grades, budgets, ...)")
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"]) or "(document)"
            lines.append(f"{where}: {error['msg']}")
        raise PolicyError("; ".join(lines)) from exc


def load_policy(path: Path) -> PolicyDocument:
    return parse_policy(path.read_text(encoding="utf-8"))
