"""The Fleet Owner API edge: its constants and request bodies, the HTTP client, reading what it reports."""
