"""Every code a customer can be told about has its words in both languages."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from services.scoring.recourse import LEVERS
from shared.contracts import SUSPENSION_REASONS, Applicant, Category, LimitBasis
from shared.reasons import (
    ADVICE,
    ALTERNATIVE_FINANCING,
    BOUNDS,
    CATEGORIES,
    CLOSURE_REASONS,
    EDUCATION,
    PROGRAMMES,
    REASON_ADVICE,
    REASONS,
    REGULATORY_RULES,
    RULE_THRESHOLDS,
    SEGMENT_NAMES,
    SUSPENSION_REASONS_TEXT,
    SYSTEM_NEXT_STEP,
    Text,
    reason_code,
)
from shared.settings import REPO_ROOT

CJK = re.compile(r"[\u4e00-\u9fff]")


def _texts() -> list[tuple[str, Text]]:
    texts: list[tuple[str, Text]] = []
    for name, table in (
        ("reason", REASONS),
        ("category", CATEGORIES),
        ("closure", CLOSURE_REASONS),
        ("bound", BOUNDS),
        ("rule", REGULATORY_RULES),
        ("threshold", RULE_THRESHOLDS),
        ("education", EDUCATION),
        ("programme", PROGRAMMES),
        ("next_step", SYSTEM_NEXT_STEP),
        ("segment", SEGMENT_NAMES),
        ("suspension", SUSPENSION_REASONS_TEXT),
    ):
        texts += [(f"{name}:{code}", text) for code, text in table.items()]
    texts.append(("alternative_financing", ALTERNATIVE_FINANCING))
    for name, advice_table in (("advice", ADVICE), ("reason_advice", REASON_ADVICE)):
        for code, advice in advice_table.items():
            texts += [(f"{name}:{code}", advice.text), (f"{name}:{code}:typical", advice.typical)]
    return texts


@pytest.mark.parametrize(("code", "text"), _texts(), ids=[c for c, _ in _texts()])
def test_every_wording_reads_in_chinese_and_in_english(code: str, text: Text) -> None:
    assert CJK.search(text("zh-CN")), f"{code}: no Chinese text"
    assert text("en").strip() and not CJK.search(text("en")), f"{code}: English text missing or not English"
    assert text("en").isascii(), f"{code}: English text should not need more than ASCII"


def test_every_category_has_words() -> None:
    assert set(get_args(Category)) == set(CATEGORIES)


def test_every_bound_on_a_limit_has_words() -> None:
    bounds = get_args(LimitBasis.model_fields["bound_by"].annotation)
    assert bounds and set(bounds) <= set(BOUNDS)


def test_every_characteristic_has_a_reason_and_advice_for_it() -> None:
    codes = {reason_code(name) for name in Applicant.model_fields}
    assert codes <= set(REASONS)
    assert codes <= set(REASON_ADVICE)


def test_every_recourse_lever_has_advice() -> None:
    assert {lever.advice for lever in LEVERS} <= set(ADVICE)


def test_every_advice_target_placeholder_is_in_both_languages() -> None:
    for code, advice in ADVICE.items():
        assert ("{target}" in advice.text.zh) == ("{target}" in advice.text.en), code
    for code, advice in REASON_ADVICE.items():
        assert "{" not in advice.text.zh + advice.text.en, f"{code}: reason advice has no target to fill"


def _policy_closure_reasons() -> set[str]:
    # Read from the policy's sources, so a reason added there without words here fails this test.
    source = "\n".join(path.read_text() for path in sorted((REPO_ROOT / "services" / "policy").rglob("*.py")))
    found = set(re.findall(r'Close\(\s*"\w+",\s*"(\w+)"', source))
    found |= set(re.findall(r"refusal = '(\w+)'", source))
    found |= set(re.findall(r'reason="(\w+)"', source))
    found |= {m for pair in re.findall(r'reason = "(\w+)" if .* else "(\w+)"', source) for m in pair}
    if 'reason=f"{dimension}_paused"' in source:
        found |= {f"{dimension}_paused" for dimension in ("segment", "region", "channel")}
    if 'Close("regulatory", bound_by' in source:
        found |= {"income_cap", "absolute_cap"}
    return found


def test_every_closure_reason_the_policy_gives_has_words() -> None:
    reasons = _policy_closure_reasons()
    assert len(reasons) >= 12, reasons  # the scan still finds the policy's reasons
    assert reasons <= set(CLOSURE_REASONS), reasons - set(CLOSURE_REASONS)


def test_every_regulatory_closure_names_its_rule() -> None:
    assert {"income_cap", "absolute_cap"} <= set(REGULATORY_RULES)


def test_every_suspension_reason_has_words_for_operators() -> None:
    assert set(SUSPENSION_REASONS) == set(SUSPENSION_REASONS_TEXT)


@pytest.mark.parametrize("table", [RULE_THRESHOLDS, REGULATORY_RULES, SYSTEM_NEXT_STEP])
def test_both_languages_of_a_rule_take_the_same_figures(table: dict[str, Text]) -> None:
    for code, text in table.items():
        assert set(re.findall(r"{(\w+)}", text("zh-CN"))) == set(re.findall(r"{(\w+)}", text("en"))), code
