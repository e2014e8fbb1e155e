"""The scorecard at run time: an applicant's points, PD, grade, principal reasons and recourse.

Pure standard library: the artifact (``models/german-woe.json``, written by
``creditwindow model train``) is turned into lookup tables once, and scoring is a bisect or a
dict look-up per characteristic and a sum. No pandas, numpy or optbinning in this path.

- **Points** are the sum of each characteristic's bin points (optbinning's ``pdo_odds`` scaling,
  the intercept spread evenly over the characteristics, so there is no separate constant).
- **Missing value** (``None``): the characteristic's missing bin. Its points are those of a
  weight of evidence of 0, i.e. the characteristic counts as if it told nothing either way.
- **Unseen category** (a code training never saw): the characteristic's special bin, which also
  carries the points of a weight of evidence of 0.
- **PD** is Platt scaling of the points: ``1 / (1 + exp(-(intercept + slope * points)))``, with
  the two parameters stored in the artifact.
- **Grade** A (best) to G by PD band: the first band whose ``pd_below`` exceeds the PD.
- **Reasons**: at most four characteristics whose points are below their best regular bin, the
  largest loss first (ties by name).
- **Recourse**: below the segment's cut-off, `services.scoring.recourse.plan`; empty at or above
  it, or when no actionable set of changes reaches it.

``model_id`` is ``name@version+`` the first 8 hex digits of the SHA-256 of the artifact's
canonical JSON (`canonical_json`), which is exactly the file ``train`` writes, so
``sha256sum models/german-woe.json`` shows the same digits.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.scoring.characteristics import CategoricalCharacteristic, Characteristic, NumericCharacteristic
from services.scoring.drift import ScoreDistribution
from services.scoring.ports import ScoreResult
from services.scoring.recourse import Planner
from shared.contracts import SEGMENTS, Applicant, Reason
from shared.reasons import reason_code

__all__ = [
    "DEFAULT_ARTIFACT",
    "FORMAT",
    "GRADES",
    "MAX_REASONS",
    "Grade",
    "InvalidArtifact",
    "ScoreResult",
    "Scorecard",
    "canonical_json",
]

FORMAT = "creditwindow-scorecard/1"
DEFAULT_ARTIFACT = Path(__file__).resolve().parent / "models" / "german-woe.json"
MAX_REASONS = 4
GRADES = ("A", "B", "C", "D", "E", "F", "G")


class InvalidArtifact(ValueError):
    """The artifact is not a scorecard this runtime can use; the message says what is wrong."""


def canonical_json(data: Mapping[str, Any]) -> str:
    """The one serialisation of an artifact: the bytes on disk and the input of the model id."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


@dataclass(frozen=True, slots=True)
class Grade:
    """A risk grade: applicants with PD below `pd_below` (and not in a better grade)."""

    grade: str
    pd_below: float


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidArtifact(message)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArtifact(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArtifact(f"{where} must be an object")
    return value


def _items(value: object, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InvalidArtifact(f"{where} must be a non-empty list")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArtifact(f"{where} must be a non-empty string")
    return value


def _characteristic(raw: object, where: str) -> Characteristic:
    spec = _mapping(raw, where)
    name = _text(spec.get("name"), f"{where}.name")
    _require(name in Applicant.model_fields, f"{where}.name {name!r} is not an Applicant characteristic")
    where = f"characteristic {name}"
    bins = [_mapping(b, f"{where} bin") for b in _items(spec.get("bins"), f"{where}: bins")]
    points = [_number(b.get("points"), f"{where} bin points") for b in bins]
    points.append(_number(_mapping(spec.get("special"), f"{where}.special").get("points"), f"{where} special points"))
    points.append(_number(_mapping(spec.get("missing"), f"{where}.missing").get("points"), f"{where} missing points"))
    kind = spec.get("kind")
    if kind == "numeric":
        splits = []
        for i, b in enumerate(bins):
            lower, upper = b.get("lower"), b.get("upper")
            _require((lower is None) == (i == 0), f"{where}: only the first bin is open below")
            _require((upper is None) == (i == len(bins) - 1), f"{where}: only the last bin is open above")
            if upper is not None:
                splits.append(_number(upper, f"{where} bin upper"))
            if lower is not None:
                _require(_number(lower, f"{where} bin lower") == splits[i - 1], f"{where}: bins must be contiguous")
        _require(all(a < b for a, b in itertools.pairwise(splits)), f"{where}: split points must ascend")
        return NumericCharacteristic(name=name, splits=tuple(splits), points=tuple(points))
    _require(kind == "categorical", f"{where}.kind must be numeric or categorical, got {kind!r}")
    bin_of: dict[str, int] = {}
    for i, b in enumerate(bins):
        categories = _items(b.get("categories"), f"{where}: a bin's categories")
        _require(all(isinstance(c, str) for c in categories), f"{where}: category codes must be strings")
        for category in categories:
            _require(category not in bin_of, f"{where}: category {category!r} is in two bins")
            bin_of[category] = i
    return CategoricalCharacteristic(name=name, bin_of=bin_of, points=tuple(points))


def _grades(raw: object) -> tuple[Grade, ...]:
    bands = [_mapping(band, "grade band") for band in _items(raw, "grades")]
    grades = []
    for i, band in enumerate(bands):
        last = i == len(bands) - 1
        bound = band.get("pd_below")
        _require((bound is None) == last, "only the last grade band is open (pd_below null)")
        grades.append(Grade(grade=str(band.get("grade")), pd_below=1.0 if last else _number(bound, "pd_below")))
    _require([g.grade for g in grades] == list(GRADES[: len(grades)]), f"grades must be {GRADES} in order")
    _require(all(a.pd_below < b.pd_below for a, b in itertools.pairwise(grades)), "grade bands must ascend")
    return tuple(grades)


class Scorecard:
    """A validated scorecard artifact as lookup tables; `score` is pure and thread-safe."""

    __slots__ = (
        "_characteristics",
        "_codes",
        "_cutoffs",
        "_grades",
        "_pd_intercept",
        "_pd_slope",
        "_planner",
        "_rows",
        "_tables",
        "model_id",
        "name",
        "score_distribution",
        "version",
    )

    model_id: str
    name: str
    version: str

    def __init__(
        self,
        *,
        model_id: str,
        name: str,
        version: str,
        characteristics: tuple[Characteristic, ...],
        pd_intercept: float,
        pd_slope: float,
        grades: tuple[Grade, ...],
        cutoffs: Mapping[str, float],
        score_distribution: ScoreDistribution,
    ) -> None:
        self.model_id = model_id
        self.name = name
        self.version = version
        self._characteristics = characteristics
        self._tables = {c.name: c for c in characteristics}
        # What `score` reads per characteristic, looked up once here instead of per applicant.
        self._rows = tuple((c.name, c.points, c.locate, c.best_points) for c in characteristics)
        self._codes = {c.name: reason_code(c.name) for c in characteristics}
        self._planner = Planner(self._tables)  # recourse, each lever's options worked out once per value
        self._pd_intercept = pd_intercept
        self._pd_slope = pd_slope
        self._grades = grades
        self._cutoffs = dict(cutoffs)
        self.score_distribution = score_distribution

    @classmethod
    def from_artifact(cls, data: Mapping[str, Any]) -> Scorecard:
        """Validate an artifact (as parsed from JSON) and build the lookup tables."""
        data = _mapping(data, "artifact")
        _require(data.get("format") == FORMAT, f"format must be {FORMAT!r}, got {data.get('format')!r}")
        name, version = _text(data.get("name"), "name"), _text(data.get("version"), "version")
        raw = _items(data.get("characteristics"), "characteristics")
        characteristics = tuple(_characteristic(c, f"characteristics[{i}]") for i, c in enumerate(raw))
        names = [c.name for c in characteristics]
        _require(len(set(names)) == len(names), "a characteristic appears twice")
        calibration = _mapping(data.get("calibration"), "calibration")
        _require(calibration.get("method") == "platt", "calibration.method must be 'platt'")
        slope = _number(calibration.get("slope"), "calibration.slope")
        _require(slope < 0, "calibration.slope must be negative: more points, lower PD")
        cutoffs_raw = _mapping(data.get("cutoffs"), "cutoffs")
        cutoffs = {
            segment: _number(
                _mapping(cutoffs_raw.get(segment), f"cutoffs.{segment}").get("points"), f"cutoffs.{segment}.points"
            )
            for segment in SEGMENTS
        }
        try:
            distribution = ScoreDistribution.from_artifact(
                _mapping(data.get("score_distribution"), "score_distribution")
            )
        except (TypeError, ValueError) as exc:
            raise InvalidArtifact(f"score_distribution: {exc}") from exc
        digest = hashlib.sha256(canonical_json(data).encode()).hexdigest()
        return cls(
            model_id=f"{name}@{version}+{digest[:8]}",
            name=name,
            version=version,
            characteristics=characteristics,
            pd_intercept=_number(calibration.get("intercept"), "calibration.intercept"),
            pd_slope=slope,
            grades=_grades(data.get("grades")),
            cutoffs=cutoffs,
            score_distribution=distribution,
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_ARTIFACT) -> Scorecard:
        """Read and validate an artifact file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidArtifact(f"{path} is not JSON: {exc}") from exc
        return cls.from_artifact(data)

    @property
    def characteristics(self) -> tuple[Characteristic, ...]:
        return self._characteristics

    def cutoff(self, segment: str) -> float:
        """The reference approval cut-off (points) of a segment: the target recourse aims at."""
        try:
            return self._cutoffs[segment]
        except KeyError:
            raise ValueError(f"no cut-off for segment {segment!r}; known: {', '.join(SEGMENTS)}") from None

    def points(self, applicant: Applicant) -> float:
        """Scorecard points only (higher is better): the hot path without reasons or recourse."""
        total = 0.0
        for table in self._characteristics:
            total += table.points[table.locate(getattr(applicant, table.name))]
        return total

    def pd(self, points: float) -> float:
        """Calibrated probability of default for a number of points."""
        z = self._pd_intercept + self._pd_slope * points
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def grade(self, pd: float) -> str:
        """Risk grade of a PD: A (best) to G."""
        for band in self._grades:
            if pd < band.pd_below:
                return band.grade
        return self._grades[-1].grade

    def score(self, applicant: Applicant, segment: str) -> ScoreResult:
        """Points, PD, grade, at most four reasons and, below the segment's cut-off, recourse."""
        cutoff = self.cutoff(segment)
        total = 0.0
        losses: list[tuple[float, str]] = []
        for name, points, locate, best in self._rows:
            got = points[locate(getattr(applicant, name))]
            total += got
            lost = best - got
            if lost > 0:
                losses.append((lost, name))
        losses.sort(key=lambda loss: (-loss[0], loss[1]))
        codes = self._codes
        reasons = tuple(Reason(code=codes[name], characteristic=name, points_lost=lost) for lost, name in losses[:MAX_REASONS])
        pd = self.pd(total)
        if total >= cutoff:
            return ScoreResult(total, pd, self.grade(pd), reasons, (), None)
        changes = self._planner.plan(applicant, cutoff - total)
        return ScoreResult(total, pd, self.grade(pd), reasons, tuple(c.as_action() for c in changes), cutoff)
