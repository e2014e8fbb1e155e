"""The policy service: scores in, window decisions out, in five rooms by job.

- `control/`: the signed policy document, its checks, and which version is active;
- `windows/`: deciding windows: the rules, the decision, budget periods and forecasts, and the
  portfolio book (`book.py`, its Lua twin `adapters/redis_book.py`, `adapters/memory_book.py`);
- `lending/`: drawdowns and repayments against the book;
- `care/`: reviews by a person, suspensions, delay notices;
- `record/`: the decision log read back: explanations, the reference index, rebuild and recovery.

Each room keeps its pure logic and ports at its top and its adapters (Redis, Kafka) in `adapters/`;
a room imports only the rooms below it in that list's reverse order (pyproject.toml,
`[tool.importlinter]`). `app.py` and `shadow_app.py` compose; `handlers.py` translates Kafka
records into calls.
"""

# The producer every event this service makes names (`Event.caused_by`).
PRODUCER = "policy"
