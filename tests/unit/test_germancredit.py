"""The German Credit rows as applications: derived fields are documented functions of the row."""

from __future__ import annotations

from devtools.germancredit import applications, load_rows


def test_all_thousand_rows_load_with_both_labels() -> None:
    rows = load_rows()
    assert len(rows) == 1000
    assert sum(r.good for r in rows) == 700


def test_income_follows_from_amount_duration_and_installment_rate() -> None:
    row = load_rows()[0]  # 1169 over 6 months at 4% of disposable income
    assert row.facts.annual_income == round(12 * (1169 / 6) * 100 / 4)


def test_business_purpose_marks_a_small_business_owner_and_past_delay_an_overdue() -> None:
    rows = load_rows()
    assert all((r.facts.segment == "small_business") == (r.applicant.purpose == "business") for r in rows)
    assert all((r.facts.bureau.overdue_count_12m == 1) == (r.applicant.credit_history == "past_delay") for r in rows)


def test_runs_have_fresh_application_ids_but_stable_pseudonymous_customers() -> None:
    first = list(applications("run1", count=3))
    second = list(applications("run2", count=3))
    assert [a.customer_id for a in first] == [a.customer_id for a in second]
    assert not {a.application_id for a in first} & {a.application_id for a in second}
    assert all(a.customer_id.startswith("cus_") and len(a.customer_id) == 20 for a in first)


def test_more_applications_than_rows_get_fresh_customers() -> None:
    apps = list(applications("big", count=2001))
    assert len({a.customer_id for a in apps}) == 2001
