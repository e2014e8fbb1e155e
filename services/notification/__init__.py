"""The notification service: window decisions in, each customer told once, in the inbox and to partners."""

# The producer every event this service makes names (`Event.caused_by`).
PRODUCER = "notification"
