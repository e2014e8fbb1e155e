"""The development commands, one per module: `dev`, `demo`, `bench`, `profile`, `faults`, `experiment`."""
