"""Long-running services beside the commands: the webhook receiver."""
