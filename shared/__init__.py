"""creditwindow's shared code: event contracts, wire format, settings, logging, Kafka/Redis helpers."""
