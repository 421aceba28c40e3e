"""One module per command; each takes values and returns an exit code."""
