"""The development commands, one per module: `dev`, `demo`, `bench`, `faults`, `experiment`."""
