"""fleet.yaml: reading YAML strictly, the published JSON Schema, and building ``Desired`` from it."""
