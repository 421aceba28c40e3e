"""The state store: what earlier runs recorded (DESIGN §6)."""
