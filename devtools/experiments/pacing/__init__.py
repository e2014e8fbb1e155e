"""The budget pacing experiment: first come, first served against pacing (`creditwindow experiment pacing`).

`simulation` (the market and one replay through the book), `statistics` (spreads, paired
differences), `experiment` (tuning and the reported runs), `report` (docs/pacing.md), `plots`.
"""
