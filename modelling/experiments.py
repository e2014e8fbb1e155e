"""What else was tried: the same cross-validation over variants of the training configuration.

Run ``python -m modelling.experiments [--docs]``: prints a Markdown table (and with
``--docs`` writes it into the "experiments" section of docs/model.md) and JSON on the last line.
Every variant re-runs the whole pipeline in every fold, for three fold seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, replace

from devtools.germancredit import load_rows
from modelling.evaluation import cross_validate
from modelling.model_doc import update_section
from modelling.training import DOMAIN_TRENDS, TrainingConfig, train

__all__ = ["VARIANTS", "Variant", "run"]

SEEDS = (7, 11, 2024)
CHOSEN = TrainingConfig()


@dataclass(frozen=True)
class Variant:
    """A named training configuration to cross-validate."""

    name: str
    config: TrainingConfig


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "optbinning defaults: trends auto, C=1, no IV filter, no min bin size",
        replace(CHOSEN, trends={}, c=1.0, min_iv=None, min_bin_size=None),
    ),
    Variant(
        "domain trends, amount ascending, C=1, no IV filter",
        replace(CHOSEN, trends=dict(DOMAIN_TRENDS, credit_amount="ascending"), c=1.0, min_iv=None, min_bin_size=None),
    ),
    Variant("domain trends, amount valley, C=1, no IV filter", replace(CHOSEN, c=1.0, min_iv=None, min_bin_size=None)),
    Variant("... + C=0.1", replace(CHOSEN, min_iv=None, min_bin_size=None)),
    Variant("... + min bin size 5%", replace(CHOSEN, min_iv=None)),
    Variant("... + IV >= 0.01 (chosen)", CHOSEN),
    Variant("chosen, amount ascending", replace(CHOSEN, trends=dict(DOMAIN_TRENDS, credit_amount="ascending"))),
    Variant("chosen, C=1", replace(CHOSEN, c=1.0)),
    Variant("chosen, C=0.01", replace(CHOSEN, c=0.01)),
    Variant("chosen, IV >= 0.02", replace(CHOSEN, min_iv=0.02)),
    Variant("chosen, IV >= 0.05", replace(CHOSEN, min_iv=0.05)),
    Variant("chosen, max p-value 0.05 between bins", replace(CHOSEN, max_pvalue=0.05)),
    Variant("chosen, at most 10 pre-bins", replace(CHOSEN, max_n_prebins=10)),
)


def run(variants: tuple[Variant, ...] = VARIANTS) -> list[dict[str, object]]:
    rows = load_rows()
    results: list[dict[str, object]] = []
    for variant in variants:
        by_seed = {seed: cross_validate(rows, variant.config, seed=seed).summary() for seed in SEEDS}
        first = by_seed[SEEDS[0]]
        kept = len(train(rows, variant.config).artifact["characteristics"])
        results.append(
            {
                "variant": variant.name,
                "characteristics": kept,
                "auc": first["auc"],
                "ks": first["ks"],
                "brier": first["brier"],
                "auc_over_seeds": round(statistics.fmean(s["auc"]["mean"] for s in by_seed.values()), 4),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def table(results: list[dict[str, object]]) -> str:
    lines = [
        (
            f"Stratified 5-fold CV of the full pipeline; AUC, KS and Brier with fold seed {SEEDS[0]} (mean ± std), and the "
            f"mean AUC over fold seeds {', '.join(map(str, SEEDS))}. Produced by `python -m modelling.experiments --docs`."
        ),
        "",
        "| variant | characteristics | AUC | KS | Brier | AUC, 3 seeds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        auc, ks, brier = r["auc"], r["ks"], r["brier"]
        lines.append(
            f"| {r['variant']} | {r['characteristics']} | {auc['mean']:.4f} ± {auc['std']:.4f} | "  # type: ignore[index]
            f"{ks['mean']:.4f} ± {ks['std']:.4f} | {brier['mean']:.4f} ± {brier['std']:.4f} | "  # type: ignore[index]
            f"{r['auc_over_seeds']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help="write the table into docs/model.md")
    args = parser.parse_args()
    results = run()
    print(table(results))
    if args.docs:
        update_section("experiments", table(results))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
