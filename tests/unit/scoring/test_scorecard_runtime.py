from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import subprocess
import sys
from typing import Any

import pytest

from devtools.germancredit import GermanRow
from services.scoring.characteristics import CategoricalCharacteristic, NumericCharacteristic
from services.scoring.scorecard import DEFAULT_ARTIFACT, MAX_REASONS, InvalidArtifact, Scorecard, canonical_json
from shared.contracts import Applicant
from shared.reasons import reason_code


def _table(scorecard: Scorecard, name: str) -> NumericCharacteristic | CategoricalCharacteristic:
    return next(c for c in scorecard.characteristics if c.name == name)


def test_model_id_is_name_version_and_the_artifact_files_hash(scorecard: Scorecard) -> None:
    digest = hashlib.sha256(DEFAULT_ARTIFACT.read_bytes()).hexdigest()
    assert scorecard.model_id == f"{scorecard.name}@{scorecard.version}+{digest[:8]}"
    assert scorecard.model_id.startswith("german-woe@1+")


def test_committed_artifact_is_in_canonical_form(artifact: dict[str, Any]) -> None:
    assert DEFAULT_ARTIFACT.read_text(encoding="utf-8") == canonical_json(artifact)


def test_points_are_the_sum_of_each_characteristics_bin_points(
    scorecard: Scorecard, rows: tuple[GermanRow, ...]
) -> None:
    applicant = rows[0].applicant
    expected = 0.0
    for table in scorecard.characteristics:
        expected += table.points[table.locate(getattr(applicant, table.name))]
    assert scorecard.points(applicant) == expected
    assert scorecard.score(applicant, "individual").points == expected


def test_all_missing_applicant_scores_every_missing_bin(scorecard: Scorecard) -> None:
    expected = sum(t.points[t.missing_bin] for t in scorecard.characteristics)
    assert scorecard.points(Applicant()) == pytest.approx(expected, abs=1e-9)


def test_missing_value_moves_only_that_characteristic_to_its_missing_bin(
    scorecard: Scorecard, rows: tuple[GermanRow, ...]
) -> None:
    applicant = rows[1].applicant
    table = _table(scorecard, "duration_months")
    before = scorecard.points(applicant)
    after = scorecard.points(applicant.model_copy(update={"duration_months": None}))
    own = table.points[table.locate(applicant.duration_months)]
    assert after - before == pytest.approx(table.points[table.missing_bin] - own, abs=1e-9)


def test_unseen_category_scores_with_the_special_bin(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    applicant = rows[2].applicant
    table = _table(scorecard, "purpose")
    assert isinstance(table, CategoricalCharacteristic)
    assert "space_travel" not in table.bin_of
    before = scorecard.points(applicant)
    after = scorecard.points(applicant.model_copy(update={"purpose": "space_travel"}))
    own = table.points[table.locate(applicant.purpose)]
    assert table.locate("space_travel") == table.special_bin
    assert after - before == pytest.approx(table.points[table.special_bin] - own, abs=1e-9)


def test_numeric_value_on_a_split_point_falls_in_the_upper_bin() -> None:
    table = NumericCharacteristic(name="duration_months", splits=(12.0, 24.0), points=(30.0, 20.0, 10.0, 15.0, 15.0))
    assert [table.locate(v) for v in (11, 12, 23, 24, 100)] == [0, 1, 1, 2, 2]
    assert table.locate(None) == table.missing_bin
    assert table.locate(float("nan")) == table.missing_bin


def test_reasons_are_at_most_four_largest_losses_first(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    for row in rows:
        result = scorecard.score(row.applicant, row.facts.segment)
        losses = sorted(
            (
                (t.best_points - t.points[t.locate(getattr(row.applicant, t.name))], t.name)
                for t in scorecard.characteristics
            ),
            key=lambda loss: (-loss[0], loss[1]),
        )
        expected = [(lost, name) for lost, name in losses if lost > 0][:MAX_REASONS]
        assert len(result.reasons) <= MAX_REASONS
        assert [(r.points_lost, r.characteristic) for r in result.reasons] == expected
        assert all(r.code == reason_code(r.characteristic) and r.points_lost > 0 for r in result.reasons)
        lost = [r.points_lost for r in result.reasons]
        assert lost == sorted(lost, reverse=True)


def test_applicant_in_every_best_bin_gets_no_reasons(scorecard: Scorecard) -> None:
    best: dict[str, object] = {}
    for table in scorecard.characteristics:
        index = max(range(table.n_bins), key=lambda i: table.points[i])
        if isinstance(table, NumericCharacteristic):
            lower, upper = table.bounds(index)
            best[table.name] = math.floor(lower) + 1 if lower is not None else math.ceil(upper) - 1
        else:
            best[table.name] = next(c for c, i in table.bin_of.items() if i == index)
    result = scorecard.score(Applicant.model_validate(best), "individual")
    assert result.reasons == ()
    assert result.points == pytest.approx(sum(t.best_points for t in scorecard.characteristics))
    assert result.grade == "A"


def test_pd_falls_as_points_rise_and_grades_follow_pd(scorecard: Scorecard) -> None:
    points = [400.0 + 10 * i for i in range(30)]
    pds = [scorecard.pd(p) for p in points]
    assert all(a > b for a, b in itertools.pairwise(pds))
    grades = [scorecard.grade(p) for p in pds]
    assert grades == sorted(grades, reverse=True)
    assert grades[0] == "G" and grades[-1] == "A"


def test_cutoff_is_where_pd_meets_the_segments_reference(scorecard: Scorecard, artifact: dict[str, Any]) -> None:
    for segment in ("individual", "small_business"):
        assert scorecard.pd(scorecard.cutoff(segment)) == pytest.approx(artifact["cutoffs"][segment]["pd"], abs=1e-3)
    assert scorecard.cutoff("small_business") < scorecard.cutoff("individual")


def test_unknown_segment_is_refused(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    with pytest.raises(ValueError, match="segment"):
        scorecard.score(rows[0].applicant, "corporate")


def _broken(artifact: dict[str, Any], path: list[str | int], value: object) -> dict[str, Any]:
    data = copy.deepcopy(artifact)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["format"], "other/1", "format"),
        (["characteristics", 0, "name"], "shoe_size", "not an Applicant characteristic"),
        (["characteristics", 0, "bins", 0, "points"], float("nan"), "finite number"),
        (["characteristics", 0, "bins"], [], "non-empty list"),
        (["characteristics", 0, "missing"], KeyError, "missing"),
        (["calibration", "slope"], 0.05, "negative"),
        (["cutoffs", "small_business"], KeyError, "small_business"),
        (["grades", 0, "grade"], "Z", "grades must be"),
        (["score_distribution", "shares", 0], 0.9, "score_distribution"),
    ],
)
def test_broken_artifacts_are_refused(
    artifact: dict[str, Any], path: list[str | int], value: object, message: str
) -> None:
    with pytest.raises(InvalidArtifact, match=message):
        Scorecard.from_artifact(_broken(artifact, path, value))


def test_numeric_bins_must_be_contiguous_and_categories_unique(artifact: dict[str, Any]) -> None:
    numeric = next(i for i, c in enumerate(artifact["characteristics"]) if c["kind"] == "numeric")
    categorical = next(i for i, c in enumerate(artifact["characteristics"]) if c["kind"] == "categorical")
    gap = _broken(artifact, ["characteristics", numeric, "bins", 1, "lower"], -1.0)
    with pytest.raises(InvalidArtifact, match="contiguous"):
        Scorecard.from_artifact(gap)
    twice = copy.deepcopy(artifact)
    bins = twice["characteristics"][categorical]["bins"]
    bins[1]["categories"].append(bins[0]["categories"][0])
    with pytest.raises(InvalidArtifact, match="two bins"):
        Scorecard.from_artifact(twice)


def test_a_changed_artifact_gets_a_different_model_id(artifact: dict[str, Any], scorecard: Scorecard) -> None:
    changed = copy.deepcopy(artifact)
    changed["characteristics"][0]["bins"][0]["points"] += 0.5
    assert Scorecard.from_artifact(changed).model_id != scorecard.model_id


def test_load_refuses_a_file_that_is_not_json(tmp_path: Any) -> None:
    path = tmp_path / "model.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidArtifact, match="not JSON"):
        Scorecard.load(path)


def test_runtime_scoring_imports_no_numpy_pandas_or_optbinning() -> None:
    code = (
        "import sys, json\n"
        "from services.scoring.scorecard import Scorecard\n"
        "from shared.contracts import Applicant\n"
        "Scorecard.load().score(Applicant(duration_months=48), 'individual')\n"
        "print(json.dumps(sorted(m for m in ('numpy', 'pandas', 'optbinning', 'sklearn') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
