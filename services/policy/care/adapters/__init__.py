"""The history of customer care on `credit.reviews`, replayed at start."""
