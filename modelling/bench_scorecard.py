"""Benchmark: the pure runtime against optbinning's `Scorecard.score`, single-threaded, same 1,000 rows.

Run ``python -m modelling.bench_scorecard [--repeats N] [--docs]``. It retrains the
optbinning pipeline (deterministic, so it is the committed artifact's model: checked by comparing
the artifacts and every row's points), then times, in one process and one run:

- one row at a time: the runtime's ``points`` and full ``score`` (reasons and recourse too) per
  `Applicant`; optbinning's ``score`` on a prepared one-row DataFrame, and on one built from the
  `Applicant` (what a service would have to do);
- a batch of all 1,000 rows: the runtime has no vectorised path, so a batch is the same loop;
  optbinning's ``score`` on the prepared 1,000-row DataFrame, and including building it.

Each figure is the best of `repeats` passes (least disturbed by the machine). Prints a table, the
ratios, and JSON on the last line; ``--docs`` writes the table into docs/model.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any


def _best_rate(work: Callable[[], object], rows: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return rows / best


def run(repeats: int) -> dict[str, Any]:
    import numpy as np

    from devtools.germancredit import load_rows
    from modelling.training import applicant_frame, quiet_optbinning, train
    from services.scoring.scorecard import DEFAULT_ARTIFACT, Scorecard, canonical_json

    rows = load_rows()
    applicants = [row.applicant for row in rows]
    segments = [row.facts.segment for row in rows]
    runtime = Scorecard.load(DEFAULT_ARTIFACT)
    trained = train()
    same_artifact = canonical_json(trained.artifact) == DEFAULT_ARTIFACT.read_text(encoding="utf-8")
    model = trained.optbinning
    frame = applicant_frame(applicants)
    one_row_frames = [frame.iloc[[i]] for i in range(len(frame))]
    max_diff = float(np.max(np.abs(np.array([runtime.points(a) for a in applicants]) - model.score(frame))))

    def runtime_points() -> None:
        for applicant in applicants:
            runtime.points(applicant)

    def runtime_score() -> None:
        for applicant, segment in zip(applicants, segments, strict=True):
            runtime.score(applicant, segment)

    def optbinning_rows_prepared() -> None:
        for one in one_row_frames:
            model.score(one)

    def optbinning_rows_built() -> None:
        for applicant in applicants:
            model.score(applicant_frame([applicant]))

    n = len(applicants)
    slow = max(1, repeats // 5)
    with quiet_optbinning():
        figures = {
            "single": {
                "runtime_points": _best_rate(runtime_points, n, repeats),
                "runtime_score_with_reasons_and_recourse": _best_rate(runtime_score, n, repeats),
                "optbinning_prepared_frame": _best_rate(optbinning_rows_prepared, n, slow),
                "optbinning_frame_from_applicant": _best_rate(optbinning_rows_built, n, slow),
            },
            "batch": {
                "runtime_points": _best_rate(runtime_points, n, repeats),
                "runtime_score_with_reasons_and_recourse": _best_rate(runtime_score, n, repeats),
                "optbinning_prepared_frame": _best_rate(lambda: model.score(frame), n, repeats),
                "optbinning_frame_from_applicant": _best_rate(
                    lambda: model.score(applicant_frame(applicants)), n, repeats
                ),
            },
        }
    ratios = {
        "single_points_vs_optbinning_prepared": figures["single"]["runtime_points"]
        / figures["single"]["optbinning_prepared_frame"],
        "single_score_vs_optbinning_from_applicant": figures["single"]["runtime_score_with_reasons_and_recourse"]
        / figures["single"]["optbinning_frame_from_applicant"],
        "batch_points_vs_optbinning_prepared": figures["batch"]["runtime_points"]
        / figures["batch"]["optbinning_prepared_frame"],
        "batch_points_vs_optbinning_from_applicant": figures["batch"]["runtime_points"]
        / figures["batch"]["optbinning_frame_from_applicant"],
    }
    return {
        "rows": n,
        "repeats": repeats,
        "model_id": runtime.model_id,
        "same_model": same_artifact,
        "max_abs_points_diff": max_diff,
        "scores_per_second": {k: {m: round(v, 1) for m, v in d.items()} for k, d in figures.items()},
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "threads": "single (BLAS/OpenMP limited to 1)",
        },
    }


def table(result: dict[str, Any]) -> str:
    rates = result["scores_per_second"]
    lines = [
        (
            f"Same {result['rows']} rows, model `{result['model_id']}` (retrained optbinning model identical to the "
            f"committed artifact: {result['same_model']}; largest points difference {result['max_abs_points_diff']:.1e}). "
            f"Best of {result['repeats']} passes (optbinning one-row: best of {max(1, int(result['repeats']) // 5)}), "
            "single-threaded, one process. Produced by `python -m modelling.bench_scorecard --docs`."
        ),
        "",
        "| path | one row at a time (scores/s) | batch of 1,000 (scores/s) |",
        "| --- | ---: | ---: |",
    ]
    labels = {
        "runtime_points": "runtime `Scorecard.points`",
        "runtime_score_with_reasons_and_recourse": "runtime `Scorecard.score` (reasons, recourse)",
        "optbinning_prepared_frame": "optbinning `Scorecard.score`, DataFrame prepared",
        "optbinning_frame_from_applicant": "optbinning `Scorecard.score`, DataFrame built from `Applicant`",
    }
    for key, label in labels.items():
        lines.append(f"| {label} | {rates['single'][key]:,.0f} | {rates['batch'][key]:,.0f} |")
    ratios = result["ratios"]
    lines += [
        "",
        "Ratios (runtime ÷ optbinning, same run): "
        + "; ".join(f"{k.replace('_', ' ')} ×{v:,.2f}" for k, v in ratios.items())
        + ".",
        "",
        (
            f"Machine: {json.dumps(result['machine'])}. The runtime's batch is the same per-row loop (it has no "
            "vectorised path); optbinning's batch is one vectorised call."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="passes per figure; the best is kept")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/model.md")
    args = parser.parse_args()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    result = run(args.repeats)
    print(table(result))
    if args.docs:
        from modelling.model_doc import update_section

        update_section("benchmark", table(result))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
