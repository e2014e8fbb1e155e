"""Budget shards per segment that rebalance: a simulation (see simulation.py)."""
