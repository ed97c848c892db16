"""Test support: a pytest plugin with a real Kafka broker and Redis for the whole session."""
