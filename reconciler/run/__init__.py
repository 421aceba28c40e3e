"""Carrying out plans: the executor, reaching the API (or the sandbox), saved plans, one-off actions."""
