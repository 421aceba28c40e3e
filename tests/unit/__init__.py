"""Fast tests of values and files: no simulator, no network, no PostgreSQL (seconds)."""
