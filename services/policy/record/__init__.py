"""The decision log read back: a decision explained and verified, references to where decisions
are, and the book rebuilt from the log when Redis lost it."""
