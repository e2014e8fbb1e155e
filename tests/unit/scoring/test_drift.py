from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from creditwindow.commands.model import app
from devtools.germancredit import GermanRow
from services.scoring.drift import ScoreDistribution, population_stability
from services.scoring.scorecard import Scorecard


def test_training_scores_are_stable_against_their_own_distribution(
    scorecard: Scorecard, rows: tuple[GermanRow, ...]
) -> None:
    scores = [scorecard.points(row.applicant) for row in rows]
    stability = population_stability(scores, scorecard.score_distribution)
    assert stability.n == 1000
    assert stability.psi < 1e-4
    assert stability.verdict == "stable"


def test_a_shifted_population_is_a_significant_shift(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    scores = [scorecard.points(row.applicant) - 40 for row in rows]
    stability = population_stability(scores, scorecard.score_distribution)
    assert stability.psi > 0.25
    assert stability.verdict == "significant_shift"


def test_psi_is_the_sum_of_share_differences_times_log_ratios() -> None:
    reference = ScoreDistribution(edges=(500.0, 550.0), shares=(0.25, 0.5, 0.25))
    stability = population_stability([400, 510, 520, 600, 610, 620, 630, 640], reference)
    actual = (1 / 8, 2 / 8, 5 / 8)
    expected = sum((a - e) * math.log(a / e) for a, e in zip(actual, reference.shares))
    assert stability.actual == pytest.approx(actual)
    assert stability.psi == pytest.approx(expected)


def test_an_empty_live_bin_is_floored_instead_of_infinite() -> None:
    reference = ScoreDistribution(edges=(500.0,), shares=(0.5, 0.5))
    assert math.isfinite(population_stability([600.0, 700.0], reference).psi)


def test_no_scores_or_non_finite_scores_are_refused() -> None:
    reference = ScoreDistribution(edges=(500.0,), shares=(0.5, 0.5))
    with pytest.raises(ValueError, match="no scores"):
        population_stability([], reference)
    with pytest.raises(ValueError, match="finite"):
        population_stability([float("inf")], reference)


def test_a_distribution_must_add_up_and_ascend() -> None:
    with pytest.raises(ValueError, match="add up"):
        ScoreDistribution(edges=(500.0,), shares=(0.5, 0.6))
    with pytest.raises(ValueError, match="ascending"):
        ScoreDistribution(edges=(500.0, 400.0), shares=(0.3, 0.3, 0.4))


def test_psi_command_reads_scores_from_stdin_and_prints_json_last(
    scorecard: Scorecard, rows: tuple[GermanRow, ...]
) -> None:
    lines = "\n".join(f"{scorecard.points(row.applicant) - 40:.3f}" for row in rows) + "\n"
    result = CliRunner().invoke(app, ["psi", "--scores", "-"], input=lines)
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["n"] == 1000 and last["verdict"] == "significant_shift" and last["model_id"] == scorecard.model_id


def test_psi_command_reads_a_file_and_refuses_garbage(tmp_path, scorecard: Scorecard) -> None:
    good = tmp_path / "scores.txt"
    good.write_text("520\n540\n\n560\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["psi", "--scores", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["n"] == 3
    bad = tmp_path / "bad.txt"
    bad.write_text("520\nabc\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["psi", "--scores", str(bad)]).exit_code == 2
