"""The history of customer care (`credit.review-results`, `credit.operator-actions`), replayed at start."""
