"""Deciding windows: from a score to `WindowOpened` or `WindowClosed`, through the rules and the
portfolio book, and each window's lifecycle (expiry, pauses, maintenance re-decisions)."""
