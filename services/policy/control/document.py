"""The policy document: a versioned YAML file, validated here, applied through signed PolicyUpdated events.

Every number the policy service decides with lives in this document, so a decision can be explained
by naming the version it used, and a candidate can be simulated before it is applied.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.contracts import SEGMENTS, Segment

__all__ = [
    "Budget",
    "CustomerCare",
    "Cycle",
    "DemandPoint",
    "GradeTerms",
    "MaintenanceWindow",
    "Multipliers",
    "Pacing",
    "PauseWindow",
    "Period",
    "PolicyDocument",
    "PolicyError",
    "Programme",
    "load_policy",
    "parse_policy",
]

GRADES = ("A", "B", "C", "D", "E", "F", "G")
# Budget periods, as ISO 8601 durations; each is a calendar period in the policy's time zone.
Period = Literal["P1D", "P1W", "P1M", "P1Q", "P1Y"]


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
    start: datetime | None = Field(default=None, description="Boosts no window decided before this (none: always).")
    end: datetime | None = Field(default=None, description="Boosts no window decided from this on (none: never ends).")

    @model_validator(mode="after")
    def _dated(self) -> Self:
        _check_dates(self.start, self.end, required=False)
        return self

    def active(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


def _check_dates(start: datetime | None, end: datetime | None, *, required: bool) -> None:
    if required and (start is None or end is None):
        raise ValueError("start and end are both required")
    if any(moment is not None and moment.utcoffset() is None for moment in (start, end)):
        raise ValueError("start and end need a time zone, e.g. 2026-12-01T02:00:00Z")
    if start is not None and end is not None and end <= start:
        raise ValueError("end must be after start")


class PauseWindow(_Part):
    """A pause with dates: from `start` (none: now) until `end` (none: until the policy changes)."""

    segments: tuple[Segment, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _dated(self) -> Self:
        _check_dates(self.start, self.end, required=False)
        if not (self.segments or self.regions or self.channels):
            raise ValueError("a scheduled pause names at least one segment, region or channel")
        return self

    def active(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


class Pauses(_Part):
    """Strategy switches: no new windows here; open windows here are closed (category `strategy`).

    `segments`, `regions` and `channels` pause until the policy changes; `scheduled` pauses start and
    end on their dates (the sweeper closes the open windows a scheduled pause covers when it starts).
    """

    segments: tuple[Segment, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    scheduled: tuple[PauseWindow, ...] = ()

    def at(self, now: datetime) -> dict[str, set[str]]:
        """Every segment, region and channel paused at `now`."""
        active = [w for w in self.scheduled if w.active(now)]
        return {
            "segment": set(self.segments).union(*(w.segments for w in active)),
            "region": set(self.regions).union(*(w.regions for w in active)),
            "channel": set(self.channels).union(*(w.channels for w in active)),
        }


class MaintenanceWindow(_Part):
    start: datetime
    end: datetime
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        _check_dates(self.start, self.end, required=True)
        return self


Multiplier = Annotated[float, Field(gt=0, le=1)]


class Multipliers(_Part):
    """Limits of particular groups cut on purpose (主动限制特定群体的授信额度): a factor of at most 1 per
    segment, region and channel, multiplied together and applied to the final limit (after the caps)."""

    segments: dict[Segment, Multiplier] = Field(default_factory=dict)
    regions: dict[str, Multiplier] = Field(default_factory=dict)
    channels: dict[str, Multiplier] = Field(default_factory=dict)

    def factor(self, segment: str, region: str, channel: str) -> float:
        return (
            self.segments.get(segment, 1.0)  # type: ignore[call-overload]
            * self.regions.get(region, 1.0)
            * self.channels.get(channel, 1.0)
        )


class Cycle(_Part):
    """The credit cycle (收缩信贷规模，并提高准入门槛): in a downturn limits shrink and cut-offs rise.

    `cutoff_raise` points are added to every segment's cut-off; an applicant between the usual cut-off
    and the raised one is closed as a strategy decision (`cycle_cutoff`), not as their credit.
    """

    cutoff_raise: float = Field(default=0.0, ge=0, le=200, description="Points added to every cut-off.")


class Budget(_Part):
    """A segment's portfolio budget: the exposure and expected loss of the windows opened in a period.

    With a `period` (``P1D``, ``P1W``, ``P1M``, ``P1Q``, ``P1Y``: a calendar day, ISO week, month,
    quarter or year in the policy's time zone) each period starts from this budget again; windows
    opened earlier stay open and carry over, charged to the period they were opened in. Without a
    period the budget is one for all time (windows released give their part back).
    """

    exposure: Money = Field(description="Sum of the limits opened in the period at most this, CNY.")
    expected_loss: Money = Field(description="Sum of their limit x PD x LGD at most this, CNY.")
    period: Period | None = Field(default=None, description="The budget period (none: one budget for all time).")


class DemandPoint(_Part):
    """A period's forecast demand at one margin: what the offers earning at least `margin` would take."""

    margin: float = Field(ge=-1, le=1)
    exposure: Money
    expected_loss: Money


class Pacing(_Part):
    """Pacing against the period's expected demand (a forecast from an earlier period's arrivals).

    At each decision, with a share `elapsed` of the budget period gone, the demand still to come at a
    margin m is forecast as demand(m) x (1 - elapsed). The margin an offer must earn is the smallest
    m whose demand still to come fits what is left of the budget (exposure and expected loss, with
    `slack` to spare): when the budget will not bind, every offer opens (first come, first served);
    when it will, the budget is kept for the better offers still to come. No forecast for a segment:
    no pacing there. `creditwindow policy optimise` writes the forecast from recorded scores.
    """

    enabled: bool = True
    slack: float = Field(
        default=0.0,
        ge=-0.5,
        le=2,
        description="Pace only when the demand to come exceeds the room by more than this share.",
    )
    demand: dict[Segment, tuple[DemandPoint, ...]] = Field(
        default_factory=dict, description="Per segment, margins ascending."
    )

    @model_validator(mode="after")
    def _curves(self) -> Self:
        for segment, points in self.demand.items():
            margins = [p.margin for p in points]
            if margins != sorted(set(margins)):
                raise ValueError(f"demand.{segment}: margins must be strictly ascending")
            exposures = [p.exposure for p in points]
            losses = [p.expected_loss for p in points]
            if exposures != sorted(exposures, reverse=True) or losses != sorted(losses, reverse=True):
                raise ValueError(f"demand.{segment}: demand cannot grow with the margin required")
        return self


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
    strategy_retry: timedelta = Field(
        default=timedelta(hours=24), description="When to try again after a strategy closure."
    )
    system_retry: timedelta = Field(
        default=timedelta(minutes=30), description="When to try again after a system closure."
    )

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
    cycle: Cycle = Cycle()
    multipliers: Multipliers = Multipliers()
    timezone: str = Field(default="Asia/Shanghai", description="Where budget periods and calendar days are counted.")
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
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from exc
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def programme_for(self, segment: str, now: datetime | None = None) -> Programme | None:
        """The segment's programme (active at `now`, when given)."""
        return next((p for p in self.programmes if p.segment == segment and (now is None or p.active(now))), None)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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
