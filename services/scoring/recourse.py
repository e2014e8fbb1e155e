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

__all__ = ["LEVERS", "MAX_CHANGES", "Change", "Lever", "Lower", "Planner", "Raise", "SwitchTo", "applied", "plan"]

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


# One lever's options for one current value: (new value, target as told, bins moved, points gained).
_Option = tuple[NewValue, str, int, float]
# Distinct values whose options one planner keeps per lever (the contract bounds them; this bounds memory).
_KEPT = 4096


class _LeverOptions:
    """A lever's changes that gain points, by the applicant's current value, worked out once per value.

    For a numeric lever the options depend only on the bin the value falls in (targets are bin
    edges, gains are bin points), so they are kept by bin; for a categorical one, by the category.
    """

    __slots__ = ("_by_bin", "_kept", "lever", "table")

    def __init__(self, lever: Lever, table: Characteristic) -> None:
        self.lever = lever
        self.table = table
        self._by_bin = isinstance(lever, Lower) and isinstance(table, NumericCharacteristic)
        self._kept: dict[object, tuple[_Option, ...]] = {}

    def of(self, value: object) -> tuple[_Option, ...]:
        if value is None:
            return ()
        if self._by_bin:
            if isinstance(value, bool) or not isinstance(value, int):
                return self._work_out(value)  # no options (`Lower` takes whole numbers only)
            key: object = self.table.locate(value)
        else:
            key = (type(value), value)  # True and 1 are equal keys, not equal values
        found = self._kept.get(key)
        if found is None:
            found = self._work_out(value)
            if len(self._kept) < _KEPT:
                self._kept[key] = found
        return found

    def _work_out(self, value: object) -> tuple[_Option, ...]:
        table = self.table
        now = table.points[table.locate(value)]  # type: ignore[arg-type]
        options = []
        for candidate in self.lever.candidates(value, table):
            gain = table.points[table.locate(candidate.value)] - now
            if gain > 0:
                options.append((candidate.value, candidate.target, candidate.steps, gain))
        return tuple(options)


class Planner:
    """`plan` for one scorecard's tables, with each lever's options worked out once per value."""

    __slots__ = ("_levers", "max_changes")

    def __init__(self, tables: Mapping[str, Characteristic], *, levers: tuple[Lever, ...] = LEVERS, max_changes: int = MAX_CHANGES) -> None:
        # a lever whose characteristic the scorecard does not use is skipped
        self._levers = tuple(_LeverOptions(lever, tables[lever.characteristic]) for lever in levers if lever.characteristic in tables)
        self.max_changes = max_changes

    def plan(self, applicant: Applicant, deficit: float) -> tuple[Change, ...]:
        """The best set of changes adding at least `deficit` points; empty if none reaches it."""
        if deficit <= 0:
            return ()
        values = [getattr(applicant, lever.lever.characteristic) for lever in self._levers]
        options = [lever.of(value) for lever, value in zip(self._levers, values, strict=True)]
        needed = deficit + _MARGIN
        max_changes = self.max_changes
        # reachable[i]: the most the levers from i on can still add; a state that cannot reach the
        # cut-off even with all of them is dropped, and a state that already reaches it is not grown
        # (one more change can only rank worse).
        reachable = [0.0] * (len(options) + 1)
        for i in range(len(options) - 1, -1, -1):
            reachable[i] = reachable[i + 1] + max((o[3] for o in options[i]), default=0.0)
        if reachable[0] < needed:
            return ()
        # A state: (changes, bins moved) -> (points gained, the chosen (lever, option) pairs).
        states: dict[tuple[int, int], tuple[float, tuple[tuple[int, _Option], ...]]] = {(0, 0): (0.0, ())}
        for i, group in enumerate(options):
            if not group:
                # Nothing to add here: reachable[i + 1] == reachable[i], so every state is kept as it is.
                continue
            rest = reachable[i + 1]
            # Every state reaches with the levers from i on (it was kept, or made, against reachable[i]).
            grown = {key: state for key, state in states.items() if state[0] + rest >= needed}
            for (count, steps), (gain, chosen) in states.items():
                if count >= max_changes or gain >= needed:
                    continue
                more = count + 1
                for option in group:
                    total = gain + option[3]
                    if total + rest < needed:
                        continue
                    key = (more, steps + option[2])
                    held = grown.get(key)
                    if held is None or total > held[0]:
                        grown[key] = (total, (*chosen, (i, option)))
            states = grown
        feasible = [
            (count, steps, -gain, chosen)
            for (count, steps), (gain, chosen) in states.items()
            if count > 0 and gain >= needed
        ]
        if not feasible:
            return ()
        best = min(feasible, key=lambda f: f[:3])[3]
        changes = []
        for i, (new_value, target, steps, gain) in best:
            lever = self._levers[i].lever
            changes.append(
                Change(
                    characteristic=lever.characteristic,
                    advice=lever.advice,
                    current=category_of(values[i]),  # type: ignore[arg-type]
                    target=target,
                    value=new_value,
                    points_gain=gain,
                    steps=steps,
                )
            )
        return tuple(sorted(changes, key=lambda c: (-c.points_gain, c.characteristic)))


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
    scorecard does not use is skipped. Changes come back with the largest gain first. (A scorecard
    keeps one `Planner`, which works each lever's options out once per value.)
    """
    return Planner(tables, levers=levers, max_changes=max_changes).plan(applicant, deficit)


def applied(applicant: Applicant, changes: tuple[Change, ...]) -> Applicant:
    """The applicant as they would be after making `changes`."""
    return applicant.model_copy(update={c.characteristic: c.value for c in changes})
