from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from creditwindow.cli import app
from devtools.germancredit import GermanRow
from modelling.training import TrainedModel, train, training_data_sha256
from services.scoring.scorecard import DEFAULT_ARTIFACT, Scorecard, canonical_json

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train()


def test_runtime_points_equal_optbinning_scores_for_all_rows(
    trained: TrainedModel, rows: tuple[GermanRow, ...]
) -> None:
    runtime = Scorecard.from_artifact(trained.artifact)
    ours = np.array([runtime.points(row.applicant) for row in rows])
    theirs = trained.optbinning.score(trained.features)
    assert len(ours) == len(theirs) == 1000
    assert np.max(np.abs(ours - theirs)) <= 1e-6


def test_training_uses_every_row_and_records_the_data_hash(trained: TrainedModel) -> None:
    training = trained.artifact["training"]
    assert training["rows"] == 1000 and training["bads"] == 300
    assert training["data_sha256"] == training_data_sha256()
    names = {c["name"] for c in trained.artifact["characteristics"]} | {
        e["name"] for e in trained.artifact["excluded_characteristics"]
    }
    assert "personal_status_and_sex" not in names and "foreign_worker" not in names
    assert len(names) == 18


def test_committed_artifact_is_what_training_produces(trained: TrainedModel) -> None:
    recorded = json.loads(DEFAULT_ARTIFACT.read_text(encoding="utf-8"))["training"]["libraries"]
    here = {lib: package_version(lib) for lib in ("numpy", "optbinning", "pandas", "scikit-learn")}
    if {k: recorded[k] for k in here} != here:
        pytest.skip(f"artifact trained with {recorded}, this environment has {here}")
    assert canonical_json(trained.artifact) == DEFAULT_ARTIFACT.read_text(encoding="utf-8")


def test_training_twice_writes_byte_identical_artifacts(tmp_path: Path) -> None:
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"model-{hash_seed}.json"
        env = os.environ | {"PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-m", "creditwindow", "model", "train", "--out", str(out)],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 1000


def test_pd_calibration_matches_the_bad_rate(trained: TrainedModel, rows: tuple[GermanRow, ...]) -> None:
    runtime = Scorecard.from_artifact(trained.artifact)
    pds = [runtime.pd(runtime.points(row.applicant)) for row in rows]
    assert abs(float(np.mean(pds)) - 0.30) < 0.03
    assert trained.artifact["calibration"]["fitted_on"].startswith("out-of-fold")


def test_evaluate_cross_validates_above_the_auc_bar_and_prints_json_last() -> None:
    result = CliRunner().invoke(app, ["model", "evaluate", "--folds", "5", "--json", "--no-docs"])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    assert summary["folds"] == 5 and summary["rows"] == 1000
    assert summary["auc"]["mean"] >= 0.79
    assert summary["gini"]["mean"] == pytest.approx(2 * summary["auc"]["mean"] - 1, abs=1e-3)
    assert 0 < summary["brier"]["mean"] < 0.25
    assert summary["ks"]["std"] > 0
