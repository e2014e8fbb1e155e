from __future__ import annotations

from devtools.germancredit import GermanRow
from services.scoring.recourse import LEVERS
from services.scoring.scorecard import Scorecard
from shared.reasons import ADVICE, LOCALES, REASONS, reason_code


def test_every_reason_and_advice_code_used_has_chinese_and_english_text(
    scorecard: Scorecard, rows: tuple[GermanRow, ...]
) -> None:
    reasons: set[str] = set()
    advice: set[str] = set()
    for row in rows:
        for segment in ("individual", "small_business"):
            result = scorecard.score(row.applicant, segment)
            reasons.update(r.code for r in result.reasons)
            for action in result.recourse:
                advice.add(action.code)
                for locale in LOCALES:
                    text = ADVICE[action.code].text(locale)
                    worded = text.format(target=action.target)
                    assert "{" not in worded
                    if "{target}" in text:
                        assert action.target in worded
    assert reasons and advice
    for code in reasons:
        assert REASONS[code].zh.strip() and REASONS[code].en.strip()
    for code in advice:
        assert ADVICE[code].text.zh.strip() and ADVICE[code].text.en.strip()
        assert ADVICE[code].typical.zh.strip() and ADVICE[code].typical.en.strip()


def test_every_scorecard_characteristic_and_lever_has_wording(scorecard: Scorecard) -> None:
    for table in scorecard.characteristics:
        assert reason_code(table.name) in REASONS
    for lever in LEVERS:
        assert lever.advice in ADVICE
