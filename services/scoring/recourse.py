"""Recourse: the fewest, smallest changes an applicant can act on that lift the score to a cut-off.

Pure standard library. Only the characteristics in `LEVERS` are ever changed, each in the one
direction a person can act on: a shorter duration, a lower amount, a lower installment rate,
fewer existing credits, more savings, a better checking balance, no installment plans elsewhere,
a guarantor or co-applicant, a registered telephone. Age, credit history, job, housing,
dependents, purpose, employment, property and residence are never suggested.

The search picks at most one change per characteristic and ranks feasible sets by

1. the number of changes (fewer first),
2. the number of bins moved in total (a smaller change first),
3. the points gained (more margin above the cut-off first),

and on a full tie keeps the set found first in `LEVERS` order, so the result is deterministic.
It is a small dynamic programme over (changes, bins moved) keeping the largest gain per state,
which is exact for this ranking because reaching the cut-off only gets easier with more gain.

A missing characteristic is never changed: we do not tell an applicant to change what they did
not tell us. A value in the special bin (an unseen category) may be moved onto the ladder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from services.scoring.characteristics import Characteristic, NumericCharacteristic, category_of
from shared.contracts import Applicant, RecourseAction

__all__ = ["LEVERS", "MAX_CHANGES", "Change", "Lever", "Lower", "Raise", "SwitchTo", "applied", "plan"]

# ScoreComputed carries at most eight recourse actions.
MAX_CHANGES = 8
# The plan must clear the cut-off by more than float noise in the re-summed points.
_MARGIN = 1e-9

NewValue = int | str | bool


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one characteristic, with the points it adds on its own."""

    characteristic: str
    advice: str
    current: str
    target: str
    value: NewValue
    points_gain: float
    steps: int

    def as_action(self) -> RecourseAction:
        return RecourseAction(
            code=self.advice,
            characteristic=self.characteristic,
            current=self.current,
            target=self.target,
            points_gain=self.points_gain,
        )


@dataclass(frozen=True, slots=True)
class _Candidate:
    value: NewValue
    target: str
    steps: int


@dataclass(frozen=True, slots=True)
class Lower:
    """A numeric characteristic the applicant can lower, down to `floor`; the target is the
    largest whole value inside a better bin, so the change is as small as it can be."""

    characteristic: str
    advice: str
    floor: int

    def candidates(self, value: object, table: Characteristic) -> Iterator[_Candidate]:
        if not isinstance(table, NumericCharacteristic) or isinstance(value, bool) or not isinstance(value, int):
            return
        current = table.locate(value)
        if current >= table.n_bins:
            return
        for index in range(current - 1, -1, -1):
            lower, upper = table.bounds(index)
            if upper is None:
                continue
            target = math.ceil(upper) - 1
            if target < self.floor:
                return
            if lower is not None and target < lower:
                continue
            yield _Candidate(target, str(target), current - index)


@dataclass(frozen=True, slots=True)
class Raise:
    """A categorical characteristic with an order the applicant can climb (savings, checking).

    A category off the ladder (no account, unknown, unseen) may move onto any rung."""

    characteristic: str
    advice: str
    ladder: tuple[str, ...]
    targets: Mapping[str, str]

    def candidates(self, value: object, table: Characteristic) -> Iterator[_Candidate]:
        if not isinstance(value, str):
            return
        rank = self.ladder.index(value) if value in self.ladder else -1
        for higher in range(rank + 1, len(self.ladder)):
            code = self.ladder[higher]
            if code in self.targets:
                yield _Candidate(code, self.targets[code], higher - rank)


@dataclass(frozen=True, slots=True)
class SwitchTo:
    """A categorical characteristic the applicant can set to one of `values`."""

    characteristic: str
    advice: str
    values: tuple[NewValue, ...]

    def candidates(self, value: object, table: Characteristic) -> Iterator[_Candidate]:
        if not isinstance(value, str | bool):
            return
        current = category_of(value)
        for target in self.values:
            if category_of(target) != current:
                yield _Candidate(target, category_of(target), 1)


Lever = Lower | Raise | SwitchTo

LEVERS: tuple[Lever, ...] = (
    Lower("duration_months", "A_SHORTER_DURATION", floor=1),
    Lower("credit_amount", "A_LOWER_AMOUNT", floor=1),
    Lower("installment_rate_pct", "A_LOWER_INSTALLMENT_RATE", floor=1),
    Lower("existing_credits", "A_FEWER_EXISTING_CREDITS", floor=0),
    Raise(
        "checking_account",
        "A_CHECKING_BALANCE",
        ladder=("lt_0", "0_to_200", "ge_200"),
        targets={"0_to_200": "0-200", "ge_200": ">= 200"},
    ),
    Raise(
        "savings",
        "A_BUILD_SAVINGS",
        ladder=("lt_100", "100_to_500", "500_to_1000", "ge_1000"),
        targets={"100_to_500": "100", "500_to_1000": "500", "ge_1000": "1000"},
    ),
    SwitchTo("other_installment_plans", "A_FEWER_INSTALLMENT_PLANS", values=("none",)),
    SwitchTo("other_debtors", "A_ADD_GUARANTOR", values=("guarantor", "co_applicant")),
    SwitchTo("telephone", "A_REGISTER_TELEPHONE", values=(True,)),
)


def _changes(applicant: Applicant, lever: Lever, table: Characteristic) -> list[Change]:
    value = getattr(applicant, lever.characteristic)
    if value is None:
        return []
    now = table.points[table.locate(value)]
    changes = []
    for candidate in lever.candidates(value, table):
        gain = table.points[table.locate(candidate.value)] - now
        if gain > 0:
            changes.append(
                Change(
                    characteristic=lever.characteristic,
                    advice=lever.advice,
                    current=category_of(value),
                    target=candidate.target,
                    value=candidate.value,
                    points_gain=gain,
                    steps=candidate.steps,
                )
            )
    return changes


def plan(
    applicant: Applicant,
    tables: Mapping[str, Characteristic],
    deficit: float,
    *,
    levers: tuple[Lever, ...] = LEVERS,
    max_changes: int = MAX_CHANGES,
) -> tuple[Change, ...]:
    """The best set of changes adding at least `deficit` points; empty if none reaches it.

    `tables` are the scorecard's characteristics by name; a lever whose characteristic the
    scorecard does not use is skipped. Changes come back with the largest gain first.
    """
    if deficit <= 0:
        return ()
    options = [
        _changes(applicant, lever, tables[lever.characteristic]) for lever in levers if lever.characteristic in tables
    ]
    needed = deficit + _MARGIN
    # reachable[i]: the most the levers from i on can still add; a state that cannot reach the
    # cut-off even with all of them is dropped, and a state that already reaches it is not grown
    # (one more change can only rank worse).
    reachable = [0.0] * (len(options) + 1)
    for i in range(len(options) - 1, -1, -1):
        reachable[i] = reachable[i + 1] + max((c.points_gain for c in options[i]), default=0.0)
    if reachable[0] < needed:
        return ()
    states: dict[tuple[int, int], tuple[float, tuple[Change, ...]]] = {(0, 0): (0.0, ())}
    for i, group in enumerate(options):
        grown = {key: state for key, state in states.items() if state[0] + reachable[i + 1] >= needed}
        for (count, steps), (gain, chosen) in states.items():
            if count >= max_changes or gain >= needed or gain + reachable[i] < needed:
                continue
            for change in group:
                total = gain + change.points_gain
                if total + reachable[i + 1] < needed:
                    continue
                key = (count + 1, steps + change.steps)
                if key not in grown or total > grown[key][0]:
                    grown[key] = (total, (*chosen, change))
        states = grown
    feasible = [
        (count, steps, -gain, chosen)
        for (count, steps), (gain, chosen) in states.items()
        if count > 0 and gain >= needed
    ]
    if not feasible:
        return ()
    best = min(feasible, key=lambda f: f[:3])[3]
    return tuple(sorted(best, key=lambda c: (-c.points_gain, c.characteristic)))


def applied(applicant: Applicant, changes: tuple[Change, ...]) -> Applicant:
    """The applicant as they would be after making `changes`."""
    return applicant.model_copy(update={c.characteristic: c.value for c in changes})
