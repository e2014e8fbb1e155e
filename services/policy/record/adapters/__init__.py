"""The decision log on Kafka, the reference index in Redis, and the book's recovery."""
