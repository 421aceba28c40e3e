"""The Fleet Owner API client: connection settings, pacing, retries, paging."""
