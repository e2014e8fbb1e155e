""""How we decide", rendered from the policy: golden in both languages, and every figure is the policy's."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditwindow.cli import app
from creditwindow.how_we_decide import render_markdown
from shared.settings import Settings
from tests.unit.policy.factories import default_policy

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_how_we_decide_matches_its_golden_file(locale: str) -> None:
    rendered = render_markdown(default_policy(), locale)
    path = GOLDEN / f"how_we_decide.{locale}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == path.read_text(encoding="utf-8")


def test_the_page_follows_the_policy_not_a_text_of_its_own() -> None:
    policy = default_policy(
        regulatory__income_fraction=0.25, knockouts__max_inquiries_3m=5, knockouts__max_overdue_12m=1, cycle_factor=0.9,
        cutoffs={"individual": 530, "small_business": 520}, pauses__regions=["CN-XZ"], customer_care__review_within="P3D",
        version=9,
    )  # fmt: skip
    english = render_markdown(policy, "en")
    assert "default@9" in english and "a quarter of your annual income" in english and "a third" not in english
    assert "more than 5 in the last 3 months" in english and "more than 1 overdue payments" in english
    assert "| individuals | 530 points |" in english and "| small-business owners | 520 points |" in english
    assert "Cycle factor x0.9:** with the economic cycle, the platform currently tightens" in english
    assert "Paused regions: CN-XZ" in english and "within 3 days" in english
    chinese = render_markdown(policy, "zh-CN")
    assert "年收入的四分之一" in chinese and "| 个人客户 | 530 分 |" in chinese and "3天 内完成" in chinese


def test_the_platforms_levers_are_on_the_page_with_their_dates() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    policy = default_policy(
        cycle__cutoff_raise=20.0, multipliers__regions={"CN-SH": 0.8}, budgets__individual__period="P1Q",
        pauses__scheduled=[{"channels": ["partner"], "start": start, "end": start + timedelta(days=3)}],
        programmes=[{"name": "spring", "segment": "small_business", "boost": 1.2, "budget": 1_000_000, "start": start, "end": start + timedelta(days=30)}],
    )  # fmt: skip
    english = render_markdown(policy, "en")
    assert "asks for 20 points more than the usual cut-off" in english and "region CN-SH: limit x0.8" in english
    assert "individuals: a quarter" in english and "small-business owners: a month" in english
    assert "Scheduled pause of partner, from December 1, 2026" in english
    assert "limit x1.2 (within a programme budget of CN¥1,000,000), from December 1, 2026" in english
    chinese = render_markdown(policy, "zh-CN")
    assert "临时提高 20 分" in chinese and "地区 CN-SH:额度 ×0.8" in chinese and "个人客户一季度" in chinese
    assert "计划暂停:partner,2026年12月1日" in chinese
    plain = render_markdown(default_policy(), "en")
    assert "points more than the usual cut-off" not in plain and "No group's limits are lowered at present." in plain


def test_policy_explain_prints_the_page_of_a_policy_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["policy", "explain", "--file", str(Settings().policy_path), "--locale", "en"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# How we decide on your borrowing window")
    out = tmp_path / "how.md"
    written = CliRunner().invoke(app, ["policy", "explain", "--file", str(Settings().policy_path), "--output", str(out)])
    assert written.exit_code == 0 and out.read_text(encoding="utf-8") == render_markdown(default_policy(), "zh-CN")
    refused = CliRunner().invoke(app, ["policy", "explain", "--locale", "fr"])
    assert refused.exit_code != 0
