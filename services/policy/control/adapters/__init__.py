"""The policy's history on `credit.policy`, replayed at start."""
